package uml

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	llsyscall "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"github.com/simple-uml/simple-uml/build/attacktest"
	"golang.org/x/sys/unix"
)

// TestSandbox starts a real program (bash, standing in for the kernel) confined as a guest would
// be: it reads its image, but not a file beside it, opens no TCP connection (with the user network
// too: that runs in this process) and signals no process outside the sandbox; the test's own
// process stays unconfined.
func TestSandbox(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	canary := attacktest.NewCanary(t, t.TempDir(), "id_ed25519")
	image := filepath.Join(t.TempDir(), "image")
	os.WriteFile(image, []byte("the guest's own image\n"), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	outside := exec.Command("sleep", "60")
	if err := outside.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { outside.Process.Kill(); outside.Wait() }()
	script := fmt.Sprintf(`read -r line < %q && echo "image: $line"
read -r secret < %q && echo "canary: $secret" || echo "canary: denied"
(exec 3<>/dev/tcp/127.0.0.1/%d) 2>/dev/null && echo "tcp: connected" || echo "tcp: denied"
kill -0 %d 2>/dev/null && echo "signal: sent" || echo "signal: denied"
`, image, canary.Path, port, outside.Process.Pid)
	for _, c := range []struct {
		name    string
		sandbox Sandbox
		net     *Net
		want    []string
	}{
		{"confined", SandboxAuto, nil, []string{"image: the guest's own image", "canary: denied", "tcp: denied", "signal: denied"}},
		{"confined, user network", SandboxAuto, &Net{Transport: UserNet}, []string{"image: the guest's own image", "canary: denied", "tcp: denied", "signal: denied"}},
		{"off", SandboxOff, nil, []string{"image: the guest's own image", "canary: CANARY", "tcp: connected", "signal: sent"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := runConfined(t, script, Options{Kernel: bash, Image: image, Sandbox: c.sandbox, Net: c.net}, &runtime{dir: t.TempDir()})
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// The ruleset was the child's: this process still reads what it likes.
	if _, err := os.ReadFile(canary.Path); err != nil {
		t.Errorf("the test process itself was confined: %v", err)
	}
	canary.Check(t)
}

// TestNice starts a program (bash, standing in for the kernel) at a lower priority, confined and
// not: it and what it starts run at that nice value, and this process keeps its own.
func TestNice(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	own, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, sandbox := range []Sandbox{SandboxAuto, SandboxOff} {
		t.Run(string(sandbox), func(t *testing.T) {
			cmd := exec.Command(bash, "-c", "exec 3<&0; (read -r _ <&3) & read -r _")
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			o := Options{Kernel: bash, Sandbox: sandbox, Nice: 7}
			tied, err := startConfined(cmd, o, &runtime{dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { stdin.Close(); tied.Wait() }()
			// The process, and its child once started (a guest's processes are the kernel's children):
			// a child means the kernel (bash) runs, past the confining start that set its priority.
			deadline := time.Now().Add(10 * time.Second)
			for {
				children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
				if pids := strings.Fields(string(children)); len(pids) > 0 {
					if got := attacktest.Nice(t, cmd.Process.Pid); got != 7 {
						t.Errorf("the started process runs at nice %d, want 7", got)
					}
					child, _ := strconv.Atoi(pids[0])
					if got := attacktest.Nice(t, child); got != 7 {
						t.Errorf("its child runs at nice %d, want 7", got)
					}
					unix.Kill(child, unix.SIGKILL)
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no child started")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	if now, _ := unix.Getpriority(unix.PRIO_PROCESS, 0); now != own {
		t.Errorf("this process's priority went from %d to %d", own, now)
	}
	for _, nice := range []int{-1, 20} {
		if _, err := (Options{Kernel: bash, Nice: nice}).args(t.TempDir()); err == nil {
			t.Errorf("nice %d was taken", nice)
		}
	}
}

// TestSandboxCOWFolder: a persistent COW file that does not exist yet is made before the kernel
// process is confined, which may then write that file and nothing else in its folder (it once got
// the whole folder, a checkout's, to let UML create the file).
func TestSandboxCOWFolder(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	image := filepath.Join(t.TempDir(), "image")
	os.WriteFile(image, make([]byte, 3*cowSectorSize+1), 0o644)
	folder := t.TempDir()
	canary := attacktest.NewCanary(t, folder, ".bashrc")
	cow := filepath.Join(folder, "boot.cow")
	o := Options{Kernel: bash, Image: image, COW: cow}
	rt, err := prepare(o)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.release()
	script := fmt.Sprintf(`echo written >> %q && echo "cow: written" || echo "cow: denied"
echo pwned >> %q && echo "canary: written" || echo "canary: denied"
echo pwned > %q && echo "new file: written" || echo "new file: denied"
`, cow, canary.Path, filepath.Join(folder, "magefile.go"))
	out := runConfined(t, script, o, rt)
	for _, w := range []string{"cow: written", "canary: denied", "new file: denied"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	canary.Check(t)
	if files, _ := filepath.Glob(filepath.Join(folder, "*")); len(files) != 2 {
		t.Errorf("the COW file's folder holds %v, want only the COW file and the canary", files)
	}
}

// runConfined runs script in o.Kernel (bash, standing in for the kernel) confined as o says, and
// returns what it printed; a host without Landlock skips the test, but fails it in CI.
func runConfined(t *testing.T, script string, o Options, rt *runtime) string {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(o.Kernel, "-c", script)
	cmd.Stdout, cmd.Stderr = &out, &out
	tied, err := startConfined(cmd, o, rt)
	if err != nil {
		t.Fatal(err)
	}
	tied.Wait()
	if rt.unconfined {
		if os.Getenv("SUML_E2E") == "1" {
			t.Fatal("this host has no Landlock; CI's must")
		}
		t.Skip("this host has no Landlock")
	}
	return out.String()
}

// fromMainThread makes the test binary start a confined process from its main thread (see
// TestConfinementLeavesNoThread).
const fromMainThread = "SUML_UML_FROM_MAIN_THREAD"

// confineFromMainThread starts a confined process from the main goroutine locked to the main thread
// (where TestMain begins), the case where Go would have kept the restricted thread, and prints the
// threads of this process that kept a system-call filter or no_new_privs.
func confineFromMainThread() int {
	goruntime.LockOSThread()
	if unix.Gettid() != unix.Getpid() {
		fmt.Println("not on the main thread")
		return 1
	}
	cmd := exec.Command("/bin/true")
	tied, err := startConfined(cmd, Options{Kernel: "/bin/true"}, &runtime{dir: os.TempDir()})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	tied.Wait()
	fmt.Println(strings.Join(threadsLeftRestricted(), " "))
	return 0
}

// restrictedThreads lists this process's threads that have a system-call filter or no_new_privs.
func restrictedThreads() []string {
	var out []string
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		status, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
		if err == nil && (strings.Contains(string(status), "\nSeccomp:\t2") || strings.Contains(string(status), "\nNoNewPrivs:\t1")) {
			out = append(out, task.Name())
		}
	}
	return out
}

// TestConfinementLeavesNoThread: a kernel confines itself, so no thread of this program ever has the
// kernel's sandbox: started from the main thread, and from whatever thread a goroutine gets, a
// hundred times.
func TestConfinementLeavesNoThread(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fromMainThread+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("confined from the main thread: threads left restricted: %q (%v)", out, err)
	}
	for i := 0; i < 100; i++ {
		cmd := exec.Command("/bin/true")
		tied, err := startConfined(cmd, Options{Kernel: "/bin/true"}, &runtime{dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		tied.Wait()
		if left := threadsLeftRestricted(); len(left) > 0 {
			t.Fatalf("start %d: threads left restricted: %v", i, left)
		}
	}
}

// threadsLeftRestricted is restrictedThreads once the thread that confined a start has had a second
// to end (Go ends it after its goroutine returns).
func threadsLeftRestricted() []string {
	deadline := time.Now().Add(time.Second)
	for {
		left := restrictedThreads()
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(time.Millisecond)
	}
}

// traceStarter makes the test binary stand in for a kernel a guest took over that tries to trace and
// signal the threads of the program that started it, whose ids it reads from its standard input (see
// TestMain).
const traceStarter = "SUML_UML_TRACE_STARTER"

// traceThreads tries to attach to, and to signal (signal 0: only the permission is checked), each
// thread id of its parent on its standard input's first line, and prints "trace <tid>: <result>" and
// "signal <tid>: <result>", each result "ok" or an errno's name.
func traceThreads() int {
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	for _, field := range strings.Fields(line) {
		tid, _ := strconv.Atoi(field)
		trace := unix.PtraceAttach(tid)
		if trace == nil {
			unix.PtraceDetach(tid)
		}
		fmt.Printf("trace %d: %s\n", tid, errnoName(trace))
		fmt.Printf("signal %d: %s\n", tid, errnoName(unix.Tgkill(os.Getppid(), tid, 0)))
	}
	return 0
}

func errnoName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

// TestConfinedKernelCannotReachItsStarter: a confined kernel, taken over, tries to trace and to
// signal each thread of the program that started it, the one that started it included (it is held
// while the kernel runs, for the parent-death signal): all refused, for Landlock lets a process trace
// and signal only its own domain (signals: ABI 6, Linux 6.12), and no thread of this program is in
// the kernel's. An attacker's review found that one, confined itself, was: it could be stopped.
func TestConfinedKernelCannotReachItsStarter(t *testing.T) {
	t.Setenv(traceStarter, "1")
	cmd := exec.Command(os.Args[0])
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	rt := &runtime{dir: t.TempDir()}
	tied, err := startConfined(cmd, Options{Kernel: os.Args[0], Sandbox: SandboxAuto}, rt)
	if err != nil {
		t.Fatal(err)
	}
	if left := restrictedThreads(); len(left) > 0 {
		t.Errorf("threads of this program under the kernel's sandbox while it runs: %v", left)
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	var tids []string
	for _, task := range tasks {
		tids = append(tids, task.Name())
	}
	fmt.Fprintln(stdin, strings.Join(tids, " "))
	stdin.Close()
	tied.Wait()
	if rt.unconfined {
		if os.Getenv("SUML_E2E") == "1" {
			t.Fatal("this host has no Landlock; CI's must")
		}
		t.Skip("this host has no Landlock")
	}
	abi, _ := llsyscall.LandlockGetABIVersion()
	for _, tid := range tids {
		if !strings.Contains(out.String(), "trace "+tid+": EPERM") {
			t.Errorf("the confined kernel tracing thread %s: want EPERM, got:\n%s", tid, out.String())
		}
		if abi >= 6 && !strings.Contains(out.String(), "signal "+tid+": EPERM") {
			t.Errorf("the confined kernel signalling thread %s: want EPERM, got:\n%s", tid, out.String())
		}
	}
}
