package uml

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// hostileKernel makes the test binary stand in for a kernel process a guest took over: it tries what
// the sandbox refuses and prints what each call returned (see TestMain).
const hostileKernel = "SUML_UML_HOSTILE_KERNEL"

// hostCalls are the calls the stand-in tries, each printed as "name: ok" or "name: <errno>".
var hostCalls = []struct {
	name string
	call func() error
}{
	{"udp", func() error { return socketErr(unix.AF_INET, unix.SOCK_DGRAM) }},
	{"inet6", func() error { return socketErr(unix.AF_INET6, unix.SOCK_DGRAM) }},
	{"netlink", func() error { return socketErr(unix.AF_NETLINK, unix.SOCK_RAW) }},
	{"unix", func() error { return socketErr(unix.AF_UNIX, unix.SOCK_SEQPACKET) }},
	{"userns", func() error { return unix.Unshare(unix.CLONE_NEWUSER) }},
	{"clone3", func() error { return rawErr(unix.SYS_CLONE3, 0, 0, 0) }},
	{"io_uring", func() error { return rawErr(unix.SYS_IO_URING_SETUP, 1, 0, 0) }},
	{"tiocsti", func() error {
		c := byte('x')
		return rawErr(unix.SYS_IOCTL, 0, unix.TIOCSTI, uintptr(unsafe.Pointer(&c)))
	}},
	{"exec", func() error { return exec.Command("/bin/true").Run() }},
	{"socketpair", func() error {
		fds, err := unix.Socketpair(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err == nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
		}
		return err
	}},
	{"chmod", func() error { return unix.Chmod(os.Getenv(probeOutside), 0o666) }},
	{"prlimit", func() error {
		var limit unix.Rlimit
		return unix.Prlimit(os.Getppid(), unix.RLIMIT_NOFILE, nil, &limit)
	}},
	{"setsid", func() error { _, err := unix.Setsid(); return err }},
	{"fchmod", func() error {
		// A file of the run folder's, opened as the sandbox allows, made readable to all.
		f, err := os.CreateTemp(os.Getenv(probeDir), "mode-")
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Chmod(0o644)
	}},
	{"setuid", func() error {
		// A file of the run folder's (see probeDir) made set-user-ID.
		f, err := os.CreateTemp(os.Getenv(probeDir), "setuid-")
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Chmod(0o755 | os.ModeSetuid)
	}},
}

// probeDir names the folder the stand-in may write (its run folder), probeOutside a file of the
// test's outside the sandbox.
const (
	probeDir     = "SUML_UML_PROBE_DIR"
	probeOutside = "SUML_UML_PROBE_OUTSIDE"
)

func socketErr(family, kind int) error {
	fd, err := unix.Socket(family, kind, 0)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func rawErr(nr, a, b, c uintptr) error {
	if _, _, errno := unix.Syscall(nr, a, b, c); errno != 0 {
		return errno
	}
	return nil
}

// tryHostCalls prints what each of hostCalls returned, then waits for its standard input to close,
// so that the test can read its /proc entry (which the sandbox keeps from the process itself).
func tryHostCalls() int {
	for _, c := range hostCalls {
		result := "ok"
		if err := c.call(); err != nil {
			var errno unix.Errno
			if errors.As(err, &errno) {
				result = unix.ErrnoName(errno)
			} else {
				result = err.Error()
			}
		}
		fmt.Printf("%s: %s\n", c.name, result)
	}
	os.Stdout.Sync()
	bufio.NewReader(os.Stdin).ReadString('\n')
	return 0
}

// TestSandboxSystemCalls starts the stand-in under the sandbox as a guest's kernel would be and wants
// each call refused the way seccompProgram and the Landlock rules say, with the capabilities of a
// root that boots it down to fileCapabilities; a raw transport keeps inet sockets; off keeps all.
func TestSandboxSystemCalls(t *testing.T) {
	t.Setenv(hostileKernel, "1")
	confined := map[string]string{"udp": "EAFNOSUPPORT", "inet6": "EAFNOSUPPORT", "netlink": "EAFNOSUPPORT", "unix": "ok",
		"userns": "EPERM", "clone3": "ENOSYS", "io_uring": "EPERM", "tiocsti": "EPERM", "exec": "EACCES",
		"socketpair": "EAFNOSUPPORT", "setuid": "EPERM", "chmod": "EPERM", "prlimit": "EPERM", "setsid": "EPERM", "fchmod": "EPERM"}
	raw := map[string]string{"udp": "ok", "unix": "ok", "userns": "EPERM", "io_uring": "EPERM", "tiocsti": "EPERM",
		"socketpair": "EAFNOSUPPORT", "setuid": "EPERM"}
	off := map[string]string{"udp": "ok", "unix": "ok", "clone3": "EINVAL", "tiocsti": "ENOTTY", "exec": "ok", "setuid": "ok",
		"chmod": "ok", "prlimit": "ok", "setsid": "ok", "fchmod": "ok"}
	for _, c := range []struct {
		name    string
		sandbox Sandbox
		net     *Net
		want    map[string]string
		filter  bool
	}{
		{"confined", SandboxAuto, nil, confined, true},
		{"confined, user network", SandboxAuto, &Net{Transport: UserNet}, confined, true},
		{"confined, raw transport", SandboxAuto, &Net{Transport: "tuntap,,,tap0"}, raw, true},
		{"off", SandboxOff, nil, off, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{Kernel: os.Args[0], Sandbox: c.sandbox, Net: c.net}
			rt := &runtime{dir: t.TempDir()}
			t.Setenv(probeDir, rt.dir)
			outside := attacktest.NewCanary(t, t.TempDir(), "id_ed25519")
			t.Setenv(probeOutside, outside.Path)
			got, status := runHostileKernel(t, o, rt)
			for name, want := range c.want {
				if name == "exec" && rt.unconfined {
					continue // Landlock's: this host has none
				}
				if !strings.Contains(got[name], want) {
					t.Errorf("%s: %q, want %q", name, got[name], want)
				}
			}
			if filtered := status["Seccomp"] == "2"; filtered != c.filter {
				t.Errorf("Seccomp: %q in its status, want a filter: %v", status["Seccomp"], c.filter)
			}
			if !c.filter {
				return
			}
			keep := uint64(fileCapabilities)
			if c.net.raw() {
				keep = rawNetCapabilities
			}
			for _, set := range []string{"CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"} {
				caps, err := strconv.ParseUint(status[set], 16, 64)
				if err != nil || os.Geteuid() == 0 && caps&^keep != 0 || os.Geteuid() != 0 && set != "CapBnd" && caps != 0 {
					t.Errorf("%s: %s, want %x at most", set, status[set], keep)
				}
			}
		})
	}
}

// runHostileKernel runs the stand-in as o says and returns what it printed and its /proc status.
func runHostileKernel(t *testing.T, o Options, rt *runtime) (map[string]string, map[string]string) {
	t.Helper()
	cmd := exec.Command(o.Kernel)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	tied, err := startConfined(cmd, o, rt)
	if err != nil {
		t.Fatal(err)
	}
	defer tied.Wait()
	defer stdin.Close()
	got := map[string]string{}
	lines := bufio.NewScanner(stdout)
	for len(got) < len(hostCalls) && lines.Scan() {
		name, result, _ := strings.Cut(lines.Text(), ": ")
		got[name] = result
	}
	status := map[string]string{}
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			status[k] = strings.TrimSpace(v)
		}
	}
	if rt.unconfined && o.Sandbox != SandboxOff {
		t.Log("this host has no Landlock: only the system-call filter and capabilities are checked")
	}
	return got, status
}

// TestSeccompProgram runs the filter in a BPF interpreter on the calls that matter: each table and
// argument check, one way and the other.
func TestSeccompProgram(t *testing.T) {
	const x86 = unix.AUDIT_ARCH_X86_64
	tests := []struct {
		name   string
		rawNet bool
		share  bool
		arch   uint32
		nr     uint32
		args   [6]uint64
		want   uint32
	}{
		{"read", false, false, x86, unix.SYS_READ, [6]uint64{}, seccompAllow},
		{"ptrace (UML's address spaces)", false, false, x86, unix.SYS_PTRACE, [6]uint64{}, seccompAllow},
		{"i386 table", false, false, unix.AUDIT_ARCH_I386, 102, [6]uint64{}, seccompNoSys},
		{"x32 table", false, false, x86, x32Bit | unix.SYS_SOCKET, [6]uint64{unix.AF_INET}, seccompNoSys},
		{"clone3", false, false, x86, unix.SYS_CLONE3, [6]uint64{}, seccompNoSys},
		{"init_module", false, false, x86, unix.SYS_INIT_MODULE, [6]uint64{}, seccompEPERM},
		{"io_uring_setup", false, false, x86, unix.SYS_IO_URING_SETUP, [6]uint64{}, seccompEPERM},
		{"fanotify_init, the last denied", false, false, x86, unix.SYS_FANOTIFY_INIT, [6]uint64{}, seccompEPERM},
		{"clone of a thread", false, false, x86, unix.SYS_CLONE, [6]uint64{unix.CLONE_VM | unix.CLONE_FILES}, seccompAllow},
		{"clone of a namespace", false, false, x86, unix.SYS_CLONE, [6]uint64{unix.CLONE_VM | unix.CLONE_NEWNET}, seccompEPERM},
		{"TIOCSTI", false, false, x86, unix.SYS_IOCTL, [6]uint64{0, unix.TIOCSTI}, seccompEPERM},
		{"TIOCLINUX", false, false, x86, unix.SYS_IOCTL, [6]uint64{0, unix.TIOCLINUX}, seccompEPERM},
		{"TCGETS", false, false, x86, unix.SYS_IOCTL, [6]uint64{0, unix.TCGETS}, seccompAllow},
		{"TIOCSTI in the high half", false, false, x86, unix.SYS_IOCTL, [6]uint64{0, 1<<32 | unix.TIOCSTI}, seccompEPERM},
		{"unix socket", false, false, x86, unix.SYS_SOCKET, [6]uint64{unix.AF_UNIX}, seccompAllow},
		{"inet socket", false, false, x86, unix.SYS_SOCKET, [6]uint64{unix.AF_INET}, seccompNoAF},
		{"packet socket", false, false, x86, unix.SYS_SOCKET, [6]uint64{unix.AF_PACKET}, seccompNoAF},
		{"inet socket, raw transport", true, false, x86, unix.SYS_SOCKET, [6]uint64{unix.AF_INET}, seccompAllow},
		{"init_module, raw transport", true, false, x86, unix.SYS_INIT_MODULE, [6]uint64{}, seccompEPERM},
		{"another architecture's table", false, false, unix.AUDIT_ARCH_AARCH64, unix.SYS_READ, [6]uint64{}, seccompNoSys},
		{"number -1", false, false, x86, 0xffffffff, [6]uint64{}, seccompNoSys},
		{"openat2", false, false, x86, unix.SYS_OPENAT2, [6]uint64{}, seccompNoSys},
		{"inet socket pair", false, false, x86, unix.SYS_SOCKETPAIR, [6]uint64{unix.AF_INET}, seccompNoAF},
		{"unix socket pair", false, false, x86, unix.SYS_SOCKETPAIR, [6]uint64{unix.AF_UNIX}, seccompAllow},
		{"inet socket pair, raw transport", true, false, x86, unix.SYS_SOCKETPAIR, [6]uint64{unix.AF_INET}, seccompNoAF},
		{"chmod 0755 with a shared folder", false, true, x86, unix.SYS_CHMOD, [6]uint64{0, 0o755}, seccompAllow},
		{"chmod 04755", false, false, x86, unix.SYS_CHMOD, [6]uint64{0, 0o4755}, seccompEPERM},
		{"fchmodat 02755", false, false, x86, unix.SYS_FCHMODAT, [6]uint64{0, 0, 0o2755}, seccompEPERM},
		{"openat creating 04755", false, false, x86, unix.SYS_OPENAT, [6]uint64{0, 0, unix.O_CREAT, 0o4755}, seccompEPERM},
		{"openat creating 0644", false, false, x86, unix.SYS_OPENAT, [6]uint64{0, 0, unix.O_CREAT, 0o644}, seccompAllow},
		{"mknodat 04755", false, false, x86, unix.SYS_MKNODAT, [6]uint64{0, 0, unix.S_IFREG | 0o4755}, seccompEPERM},
		{"chmod 0644 without a shared folder", false, false, x86, unix.SYS_CHMOD, [6]uint64{0, 0o644}, seccompEPERM},
		{"chmod 0644 with a shared folder", false, true, x86, unix.SYS_CHMOD, [6]uint64{0, 0o644}, seccompAllow},
		{"chmod 04755 with a shared folder", false, true, x86, unix.SYS_CHMOD, [6]uint64{0, 0o4755}, seccompEPERM},
		{"fchmod without a shared folder", false, false, x86, unix.SYS_FCHMOD, [6]uint64{3, 0o644}, seccompEPERM},
		{"fchmod 0644 with a shared folder", false, true, x86, unix.SYS_FCHMOD, [6]uint64{3, 0o644}, seccompAllow},
		{"fchmod 0666 with a shared folder", false, true, x86, unix.SYS_FCHMOD, [6]uint64{3, 0o666}, seccompEPERM},
		{"chmod 0775 with a shared folder", false, true, x86, unix.SYS_CHMOD, [6]uint64{0, 0o775}, seccompEPERM},
		{"openat creating 0666 with a shared folder", false, true, x86, unix.SYS_OPENAT, [6]uint64{0, 0, unix.O_CREAT, 0o666}, seccompAllow},
		{"fsetxattr without a shared folder", false, false, x86, unix.SYS_FSETXATTR, [6]uint64{}, seccompEPERM},
		{"fchown without a shared folder", false, false, x86, unix.SYS_FCHOWN, [6]uint64{}, seccompEPERM},
		{"setxattr without a shared folder", false, false, x86, unix.SYS_SETXATTR, [6]uint64{}, seccompEPERM},
		{"utimensat with a shared folder", false, true, x86, unix.SYS_UTIMENSAT, [6]uint64{}, seccompAllow},
		{"inotify_add_watch", false, true, x86, unix.SYS_INOTIFY_ADD_WATCH, [6]uint64{}, seccompEPERM},
		{"setsid", false, false, x86, unix.SYS_SETSID, [6]uint64{}, seccompEPERM},
		{"prlimit64 of itself", false, false, x86, unix.SYS_PRLIMIT64, [6]uint64{0, unix.RLIMIT_STACK}, seccompAllow},
		{"prlimit64 of another", false, false, x86, unix.SYS_PRLIMIT64, [6]uint64{4242, unix.RLIMIT_NOFILE}, seccompEPERM},
		{"setpriority of itself", false, false, x86, unix.SYS_SETPRIORITY, [6]uint64{unix.PRIO_PROCESS, 0, 5}, seccompAllow},
		{"setpriority of another", false, false, x86, unix.SYS_SETPRIORITY, [6]uint64{unix.PRIO_PROCESS, 4242, 19}, seccompEPERM},
		{"setpriority of the user's processes", false, false, x86, unix.SYS_SETPRIORITY, [6]uint64{unix.PRIO_USER, 0, 19}, seccompEPERM},
		{"sched_setaffinity of another", false, false, x86, unix.SYS_SCHED_SETAFFINITY, [6]uint64{4242}, seccompEPERM},
		{"ioprio_set of itself", false, false, x86, unix.SYS_IOPRIO_SET, [6]uint64{1, 0}, seccompAllow},
		{"ioprio_set of a process group", false, false, x86, unix.SYS_IOPRIO_SET, [6]uint64{2, 0}, seccompEPERM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := seccompProgram(seccompOptions{rawNet: tt.rawNet, share: tt.share})
			if err != nil {
				t.Fatal(err)
			}
			prog, ok := bpf.Disassemble(raw)
			if !ok {
				t.Fatal("the program does not disassemble")
			}
			vm, err := bpf.NewVM(prog)
			if err != nil {
				t.Fatal(err)
			}
			got, err := vm.Run(seccompData(tt.nr, tt.arch, tt.args))
			if err != nil {
				t.Fatal(err)
			}
			if uint32(got) != tt.want {
				t.Errorf("returned %#x, want %#x", got, tt.want)
			}
		})
	}
}

// seccompData is struct seccomp_data as the filter's 32-bit loads see it (the interpreter reads
// big-endian words, the kernel native ones: each word is written so that both read the same value).
func seccompData(nr, arch uint32, args [6]uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[seccompNr:], nr)
	binary.BigEndian.PutUint32(b[seccompArch:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[seccompArgLow(uint32(i)):], uint32(a))
		binary.BigEndian.PutUint32(b[seccompArgLow(uint32(i))+4:], uint32(a>>32))
	}
	return b
}

// syscallLoop makes the test binary a stand-in that makes that many cheap system calls (getppid)
// and prints how long each took, in nanoseconds (see BenchmarkSystemCall).
const syscallLoop = "SUML_UML_SYSCALL_LOOP"

func loopSystemCalls(count string) int {
	n, err := strconv.Atoi(count)
	if err != nil {
		return 1
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		unix.Getppid()
	}
	fmt.Println(float64(time.Since(start).Nanoseconds()) / float64(n))
	return 0
}

// BenchmarkSystemCall: what a system call of the kernel process costs under the sandbox (Landlock
// has no say in getppid: the difference is the filter's) against none.
func BenchmarkSystemCall(b *testing.B) {
	for _, sandbox := range []Sandbox{SandboxOff, SandboxAuto} {
		b.Run("sandbox="+string(sandbox), func(b *testing.B) {
			b.Setenv(syscallLoop, strconv.Itoa(b.N))
			var out bytes.Buffer
			cmd := exec.Command(os.Args[0])
			cmd.Stdout = &out
			tied, err := startConfined(cmd, Options{Kernel: os.Args[0], Sandbox: sandbox}, &runtime{dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			if err := tied.Wait(); err != nil {
				b.Fatal(err)
			}
			ns, err := strconv.ParseFloat(strings.TrimSpace(out.String()), 64)
			if err != nil {
				b.Fatalf("the stand-in printed %q", out.String())
			}
			b.ReportMetric(ns, "ns/syscall")
		})
	}
}
