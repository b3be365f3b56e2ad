package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/peer"
)

// signalBench runs the compiled magefile as a person does, on a terminal (script(1)), as the
// end-to-end pair's owner, with a TMPDIR, cache and tmux server of its own.
type signalBench struct {
	dir   string // the bench's own folder
	mage  string // the compiled magefile
	linux string // the kernel the guests run: its processes name it
	env   []string
	cred  *syscall.Credential
}

func newSignalBench(t *testing.T, ws string, owner int) *signalBench {
	t.Helper()
	dir, err := os.MkdirTemp("", "suml-sig-") // short: sockets' paths have 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { files.RemoveAllWritable(dir) })
	b := &signalBench{dir: dir, mage: filepath.Join(dir, "bin", "mage"), linux: filepath.Join(ws, "dist", kernel.LinuxName)}
	for _, d := range []string{"bin", "tmp", "cache", "labs"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "labs", "pair.toml"), []byte(fmt.Sprintf(pairLab, "", "b")), 0o644)
	compile := exec.Command("go", "tool", "mage", "-compile", b.mage)
	compile.Dir = repoRoot(t)
	if out, err := compile.CombinedOutput(); err != nil {
		t.Fatalf("go tool mage -compile: %v\n%s", err, out)
	}
	b.env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TERM=xterm", "SHELL=/bin/sh", // a person's: tmux runs windows with it
		"TMPDIR=" + filepath.Join(dir, "tmp"), "TMUX_TMPDIR=" + filepath.Join(dir, "tmp"),
		"SUML_DIST=" + filepath.Join(ws, "dist"), "SUML_RECIPES=" + filepath.Join(ws, "recipes"),
		"SUML_ROOTFS_RECIPE=test", "SUML_CACHE=" + filepath.Join(dir, "cache"),
		"SUML_LABS=" + filepath.Join(dir, "labs"), "SUML_BOOT_TIMEOUT=30", "SUML_STATE=" + filepath.Join(dir, "state"),
	}
	if os.Geteuid() == 0 {
		if err := chownTree(dir, owner); err != nil {
			t.Fatal(err)
		}
		b.cred = &syscall.Credential{Uid: uint32(owner), Gid: uint32(owner)}
	}
	t.Cleanup(func() { b.command("tmux", "kill-server").Run() })
	return b
}

// command is name with args as the bench's user, in its environment, from the settings' folder.
func (b *signalBench) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env, cmd.Dir = b.env, filepath.Join(filepath.Dir(b.linux), "..", "root")
	if b.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: b.cred}
	}
	return cmd
}

// mageRun is one `mage <args>` on a terminal, the terminal's settings read before and after it.
type mageRun struct {
	cmd    *exec.Cmd
	stdin  *os.File // held open: script ends at its end
	out    syncBuffer
	marker string // the folder of its before, after and status files
}

func (b *signalBench) start(t *testing.T, args ...string) *mageRun {
	t.Helper()
	marker, err := os.MkdirTemp(b.dir, "marks-") // the bench's user writes there
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(marker, 0o777)
	r := &mageRun{marker: marker}
	// After a SIGKILL the terminal is restored by a guard process, a moment after mage has ended:
	// the settings are read again for up to 5 s until they are as before.
	shell := fmt.Sprintf("stty -g > %[1]s/before; %[2]s %[3]s; echo $? > %[1]s/status; "+
		"for i in $(seq 50); do stty -g > %[1]s/after; cmp -s %[1]s/before %[1]s/after && break; sleep 0.1; done",
		r.marker, b.mage, strings.Join(args, " "))
	r.cmd = b.command("script", "-qefc", shell, "/dev/null")
	in, hold, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.cmd.Stdin, r.stdin = in, hold
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	in.Close()
	return r
}

// magePid is the pid of the bench's mage process, once it runs.
func (b *signalBench) magePid() int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.HasPrefix(cmdline, []byte(b.mage+"\x00")) {
			var pid int
			fmt.Sscan(e.Name(), &pid)
			return pid
		}
	}
	return 0
}

// privateDirs lists the private folders (files.PrivateDir) in the bench's TMPDIR and cache.
func (b *signalBench) privateDirs() []string {
	var out []string
	for _, pattern := range []string{"tmp/*/" + files.OwnerFile, "cache/run/*/" + files.OwnerFile} {
		found, _ := filepath.Glob(filepath.Join(b.dir, pattern))
		for _, f := range found {
			out = append(out, filepath.Dir(f))
		}
	}
	return out
}

// waitFor polls until cond holds or d has passed, and says whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// TestSignalsLeaveNothing: whatever signal ends `mage boot`, `mage test` or `mage lab` (SIGINT,
// SIGTERM, SIGHUP, SIGKILL), while its guests start or once they are ready, no guest process
// outlives it, and the terminal is left as it was found. A signal it can catch also leaves no
// private folder, no socket and no tmux session, and exit status 1 (0 for a lab that was up: Ctrl-C
// is how a lab ends). SIGKILL's folders and tmux session are the next run's to remove, and that run
// works.
func TestSignalsLeaveNothing(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	for _, tool := range []string{"script", "stty"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing: apt-get install bsdutils coreutils", tool)
		}
	}
	ws, _, owner := e2ePair(t)
	b := newSignalBench(t, ws, owner)
	targets := []struct {
		args  []string
		ready string
	}{
		{[]string{"boot"}, "login:"},
		{[]string{"test"}, "ready (\"login:\")"},
		{[]string{"lab", "pair"}, "lab pair is up"},
	}
	for _, target := range targets {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGKILL} {
			for _, atReady := range []bool{false, true} {
				when := "starting"
				if atReady {
					when = "ready"
				}
				t.Run(fmt.Sprintf("%s/%s/%s", target.args[0], signalName(sig), when), func(t *testing.T) {
					b.signalOnce(t, target.args, target.ready, sig, atReady)
				})
			}
		}
	}
	// The next runs remove what SIGKILL left, and work: a lab (in place of the tmux session the
	// killed one left), then a test.
	r := b.start(t, "lab", "pair")
	if !waitFor(time.Minute, func() bool { return strings.Contains(r.out.String(), "consoles: `tmux attach") }) {
		ps, _ := exec.Command("ps", "-eo", "pid,ppid,stat,args").Output()
		t.Errorf("the lab after a killed one opened no tmux session:\n%s\n%s", r.out.String(), ps)
	}
	if windows, err := b.command("tmux", "list-windows", "-t", "suml-lab-pair", "-F", "#W").Output(); err != nil || strings.Join(strings.Fields(string(windows)), " ") != "a b" {
		t.Errorf("the lab's tmux windows: %q %v", windows, err)
	}
	syscall.Kill(b.magePid(), syscall.SIGINT)
	r.cmd.Wait()
	r.stdin.Close()
	next := b.command(b.mage, "test")
	if out, err := next.CombinedOutput(); err != nil || !strings.Contains(string(out), "test passed") {
		t.Fatalf("mage test after the signals: %v\n%s", err, out)
	}
	if left := b.privateDirs(); len(left) > 0 {
		t.Errorf("private folders left after the next run: %v", left)
	}
	if left := umlProcesses(b.linux); len(left) > 0 {
		t.Errorf("guest processes left after the next run:\n%s", strings.Join(left, "\n"))
	}
}

// pidOf is the pid of an umlProcesses line.
func pidOf(line string) int {
	var pid int
	fmt.Sscan(strings.SplitN(line, ":", 2)[0], &pid)
	return pid
}

// stopped says whether the process of an umlProcesses line is stopped (T or t).
func stopped(line string) bool {
	state, err := peer.State(pidOf(line))
	return err == nil && (state == "T" || state == "t")
}

func signalName(sig syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGINT: "INT", syscall.SIGTERM: "TERM", syscall.SIGHUP: "HUP", syscall.SIGKILL: "KILL"}[sig]
}

// signalOnce starts mage with args, sends it sig once its guest's kernel runs (or once its output
// says ready), and checks what is left.
func (b *signalBench) signalOnce(t *testing.T, args []string, ready string, sig syscall.Signal, atReady bool) {
	r := b.start(t, args...)
	defer r.stdin.Close()
	exited := make(chan error, 1)
	go func() { exited <- r.cmd.Wait() }()
	guestRuns := func() bool { return len(umlProcesses(b.linux)) > 0 }
	if !waitFor(time.Minute, guestRuns) {
		t.Fatalf("no guest started:\n%s", r.out.String())
	}
	if atReady && !waitFor(time.Minute, func() bool { return strings.Contains(r.out.String(), ready) }) {
		t.Fatalf("never ready (%q):\n%s", ready, r.out.String())
	}
	pid := b.magePid()
	if pid == 0 {
		t.Fatalf("no mage process:\n%s", r.out.String())
	}
	syscall.Kill(pid, sig)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		t.Fatalf("mage %s did not end within 20 s of SIG%s:\n%s", args[0], signalName(sig), r.out.String())
	}
	// SIGKILL reaches the kernel process alone: a UML helper it was starting at that moment may stay
	// stopped, until the next run (see the end of the test).
	leftRunning := func() []string {
		var out []string
		for _, p := range umlProcesses(b.linux) {
			if sig != syscall.SIGKILL || !stopped(p) {
				out = append(out, p)
			}
		}
		return out
	}
	if !waitFor(5*time.Second, func() bool { return len(leftRunning()) == 0 }) {
		t.Errorf("guest processes outlived mage:\n%s", strings.Join(leftRunning(), "\n"))
		for _, p := range leftRunning() {
			syscall.Kill(pidOf(p), syscall.SIGKILL)
		}
	}
	before, _ := os.ReadFile(filepath.Join(r.marker, "before"))
	after, _ := os.ReadFile(filepath.Join(r.marker, "after"))
	if len(before) == 0 || !bytes.Equal(before, after) {
		t.Errorf("the terminal's settings: %q before, %q after", before, after)
	}
	if sig == syscall.SIGKILL {
		return
	}
	// A lab once up ends with Ctrl-C by design: that is a success.
	want := "1"
	if args[0] == "lab" && atReady {
		want = "0"
	}
	status, _ := os.ReadFile(filepath.Join(r.marker, "status"))
	if got := strings.TrimSpace(string(status)); got != want {
		t.Errorf("exit status %q, want %s:\n%s", got, want, r.out.String())
	}
	if left := b.privateDirs(); len(left) > 0 {
		t.Errorf("private folders left: %v\n%s", left, r.out.String())
		for _, d := range left {
			files.RemoveAllWritable(d)
		}
	}
	if b.command("tmux", "has-session", "-t", "suml-lab-pair").Run() == nil {
		t.Error("the lab's tmux session is left")
		b.command("tmux", "kill-session", "-t", "suml-lab-pair").Run()
	}
}

// TestKilledDebugLeavesNoKernel: `mage debug` killed with SIGKILL while its guest runs under gdb
// leaves no kernel running: gdb dies with mage (its parent-death signal), and the kernel with gdb
// (gdb traces it with PTRACE_O_EXITKILL; a tracee whose tracer dies is otherwise let go).
func TestKilledDebugLeavesNoKernel(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, _, owner := e2ePair(t)
	b := newSignalBench(t, ws, owner)
	r := b.start(t, "debug")
	defer r.stdin.Close()
	exited := make(chan error, 1)
	go func() { exited <- r.cmd.Wait() }()
	if !waitFor(2*time.Minute, func() bool { return strings.Contains(r.out.String(), "start_kernel") }) {
		t.Fatalf("gdb did not stop in start_kernel:\n%s", r.out.String())
	}
	r.stdin.WriteString("continue\n")
	if !waitFor(time.Minute, func() bool { return strings.Contains(r.out.String(), "login:") }) {
		t.Fatalf("the guest did not boot under gdb:\n%s", r.out.String())
	}
	syscall.Kill(b.magePid(), syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
	}
	running := func() []string {
		var out []string
		for _, p := range umlProcesses(b.linux) { // dist/linux-debug, and the helpers naming it
			if !stopped(p) {
				out = append(out, p)
			}
		}
		return out
	}
	if !waitFor(5*time.Second, func() bool { return len(running()) == 0 }) {
		t.Errorf("guest processes outlived a killed mage debug:\n%s", strings.Join(running(), "\n"))
		for _, p := range running() {
			syscall.Kill(pidOf(p), syscall.SIGKILL)
		}
	}
}
