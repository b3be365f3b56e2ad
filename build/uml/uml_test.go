package uml

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/usernet"
)

// script writes an executable that stands in for the kernel binary, to exercise the runner's process
// handling (the real kernel boots in the pipeline's end-to-end test).
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "linux")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBoot(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		until   string
		timeout time.Duration
		want    string // error part; empty for success
		console string
	}{
		{"exits cleanly", `echo "args: $*"; echo "reboot: System halted"`, "", 0, "", "ubd0=/img root=/dev/ubda rw mem=128M con=null con0=fd:0,fd:1"},
		{"marker ends the run", `echo booting; echo READY; sleep 30`, "READY", 10 * time.Second, "", "READY"},
		{"panic", `echo "Kernel panic - not syncing: VFS: Unable to mount root fs"`, "", 0, "kernel panic", ""},
		{"timeout", `echo stuck; sleep 30`, "READY", 300 * time.Millisecond, "timed out", ""},
		{"exit status", `echo dying; exit 4`, "", 0, "exit status 4", ""},
		{"no marker before exit", `echo "reboot: Power down"`, "READY", 0, `without printing "READY"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res, err := RunUntilExit(context.Background(), Options{Kernel: script(t, tt.body), Image: "/img", Until: tt.until, Timeout: tt.timeout, Init: "/init", Sandbox: fakeKernel})
			if tt.want != "" {
				var be *Error
				if !errors.As(err, &be) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Console, tt.console) {
				t.Errorf("console %q lacks %q", res.Console, tt.console)
			}
			if time.Since(start) > 10*time.Second {
				t.Error("runner waited for the guest after the marker")
			}
		})
	}
}

func TestBootLeavesNoProcess(t *testing.T) {
	kernel := script(t, `sleep 31 & echo READY; wait`)
	if _, err := RunUntilExit(context.Background(), Options{Kernel: kernel, Image: "/img", Until: "READY", Sandbox: fakeKernel}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if out := processesMatching(t, "^sleep 31$"); out != "" {
		t.Errorf("a guest process survived: %s", out)
	}
}

// fakeKernel is the sandbox of these tests' stand-in kernels: shell scripts that use the host's
// tools, which the sandbox of a real kernel does not allow (TestSandbox and the end-to-end boot tests
// run it).
const fakeKernel = SandboxOff

func TestArgs(t *testing.T) {
	dir := t.TempDir()
	share := filepath.Join(t.TempDir(), "share")
	os.Mkdir(share, 0o755)
	linked := filepath.Join(t.TempDir(), "link")
	os.Symlink(share, linked)
	spaced := filepath.Join(t.TempDir(), "share init=")
	os.Mkdir(spaced, 0o755)
	cases := []struct {
		name string
		o    Options
		want []string
	}{
		{"plain", Options{Image: "/img"}, []string{"ubd0=/img", "root=/dev/ubda", "mem=128M", "con0=fd:0,fd:1", "uml_dir=" + dir}},
		{"cow over the image", Options{Image: "/img", COW: "/tmp/a.cow"}, []string{"ubd0=/tmp/a.cow,/img"}},
		{"hostfs, memory, init, extra", Options{Image: "/img", Hostfs: share, Mem: "512M", Init: "/sbin/init", Args: []string{"quiet"}},
			[]string{"hostfs=" + share, "mem=512M", "init=/sbin/init", "quiet"}},
		// The kernel refuses to mount a link: it gets the folder the link names.
		{"hostfs through a link", Options{Image: "/img", Hostfs: linked}, []string{"hostfs=" + share}},
		{"user network", Options{Image: "/img", Net: &Net{Transport: UserNet, Hostname: "box"}},
			[]string{"vec0:transport=bess,dst=" + filepath.Join(dir, "net.sock") + ",depth=128,mtu=65520,mac=52:54:00:12:34:56",
				"ip=10.0.2.15::10.0.2.2:255.255.255.0:box:vec0:off:10.0.2.2"}},
		{"tap", Options{Image: "/img", Net: &Net{Transport: "tuntap,,,tap0"}}, []string{"eth0=tuntap,,,tap0"}},
		{"no image", Options{Args: []string{"kunit.enable=1"}}, []string{"mem=128M", "con0=fd:0,fd:1", "kunit.enable=1"}},
		{"lab LANs after the user network", Options{Image: "/img", Net: &Net{Transport: UserNet},
			LANs: []LANPort{{Socket: "/run/lab/lan1.sock", MAC: "52:54:01:01:01:00"}, {Socket: "/run/lab/lan2.sock", MAC: "52:54:01:01:02:00"}}},
			[]string{"vec1:transport=bess,dst=/run/lab/lan1.sock,depth=128,mac=52:54:01:01:01:00", "vec2:transport=bess,dst=/run/lab/lan2.sock,depth=128,mac=52:54:01:01:02:00"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args, err := c.o.args(dir)
			if err != nil {
				t.Fatal(err)
			}
			joined := " " + strings.Join(args, " ") + " "
			for _, w := range c.want {
				if !strings.Contains(joined, " "+w+" ") {
					t.Errorf("command line %q lacks %q", joined, w)
				}
			}
		})
	}
	if args, err := (Options{}).args(dir); err != nil || strings.Contains(strings.Join(args, " "), "ubd0=") || strings.Contains(strings.Join(args, " "), "root=") {
		t.Errorf("a boot without an image: %q %v", args, err)
	}
	// A path with a space or a comma would add kernel parameters or ubd files nobody wrote.
	for _, o := range []Options{
		{Image: "/img", COW: "/tmp/a.cow hostfs=/"},
		{Image: "/img", Hostfs: spaced},
		{Image: "/img", COW: "/tmp/a.cow,/etc/shadow"},
		{Image: "/img\nquiet"},
		{Image: "/img", LANs: []LANPort{{Socket: "/run/lan.sock,dst=/tmp/x", MAC: "52:54:01:01:01:00"}}},
		{Image: "/img", LANs: []LANPort{{Socket: "/run/lan.sock init=/bin/sh", MAC: "52:54:01:01:01:00"}}},
	} {
		if _, err := o.args(dir); err == nil || !strings.Contains(err.Error(), "kernel command line") {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := (Options{Image: "/img", Hostfs: filepath.Join(share, "missing")}).args(dir); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("a missing shared folder: %v", err)
	}
	for _, n := range []*Net{{Transport: "tuntap,,,tap0", Forwards: []usernet.Forward{{Host: 1, Guest: 2}}}, {Transport: "tuntap,,,tap0", HostAccess: true}} {
		if _, err := (Options{Image: "/img", Net: n}).args(dir); err == nil {
			t.Errorf("%+v accepted: forwards and host access are the user network's", n)
		}
	}
	for _, mem := range []string{"128M ubd1=/etc/shadow", "abc", "1T"} {
		if _, err := (Options{Image: "/img", Mem: mem}).args(dir); err == nil || !strings.Contains(err.Error(), "256M") {
			t.Errorf("guest memory %q: %v", mem, err)
		}
	}
	for _, tr := range []string{"tuntap,,,tap0 ubd1=/etc/shadow", "tuntap\nquiet"} {
		if _, err := (Options{Image: "/img", Net: &Net{Transport: tr}}).args(dir); err == nil || !strings.Contains(err.Error(), "kernel command line") {
			t.Errorf("transport %q: %v", tr, err)
		}
	}
	if _, err := (Options{Image: "/img", LANs: []LANPort{{Socket: "/run/lan.sock", MAC: "52:54:01:01:01:00,x=1"}}}).args(dir); err == nil {
		t.Error("a MAC address that adds vector options was accepted")
	}
	if _, err := (Options{Image: "/img", LANs: []LANPort{{Socket: "/" + strings.Repeat("s", 120), MAC: "52:54:01:01:01:00"}}}).args(dir); err == nil || !strings.Contains(err.Error(), "shorter folder") {
		t.Errorf("a LAN socket path too long for sun_path: %v", err)
	}
	long := filepath.Join(dir, strings.Repeat("d", 100))
	if _, err := (Options{Image: "/img", Net: &Net{Transport: UserNet}}).args(long); err == nil || !strings.Contains(err.Error(), "TMPDIR") {
		t.Errorf("a socket path too long for sun_path: %v", err)
	}
}

// TestGuestConsole drives a stand-in kernel that is a shell reading the console, as a guest's is.
func TestGuestConsole(t *testing.T) {
	kernel := script(t, `echo "login: "; exec sh`)
	ctx := context.Background()
	g, err := Start(ctx, Options{Kernel: kernel, Image: "/img", Sandbox: fakeKernel})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	if _, err := g.Expect(ctx, "login:", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		cmd    string
		out    string
		status int
	}{
		{"echo hello", "hello", 0},
		{"printf 'a\\nb\\n'", "a\nb", 0},
		{"false", "", 1},
		{"sleep 30 &", "", 0},
		{`echo "SUML-END-9:" quoted`, "SUML-END-9: quoted", 0},
		{"exit_code() { return 7; }; exit_code", "", 7},
	}
	for _, c := range cases {
		out, status, err := g.Run(ctx, c.cmd, 5*time.Second)
		if err != nil || out != c.out || status != c.status {
			t.Errorf("Run(%q) = %q, %d, %v; want %q, %d", c.cmd, out, status, err, c.out, c.status)
		}
	}
	if _, which, err := g.ExpectAny(ctx, 100*time.Millisecond, "never", "also never"); err == nil || which != -1 {
		t.Errorf("ExpectAny of absent text: %d %v", which, err)
	}
	g.Send("exit 0\n")
	if err := g.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if out := processesMatching(t, "^sleep 30$"); out != "" {
		t.Errorf("a background process of the guest survived Stop: %s", out)
	}
}

// processesMatching lists the processes whose command line matches pattern (pgrep -f); pgrep's
// "none" (status 1) is an answer, any other failure (pgrep missing) fails the test.
func processesMatching(t *testing.T, pattern string) string {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", pattern).Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("pgrep (apt-get install procps): %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestConsoleFlood: a guest that prints far more than ConsoleKept is still read (Expect finds what
// follows the flood, commands still run) while only the last ConsoleKept bytes stay in memory.
func TestConsoleFlood(t *testing.T) {
	kernel := script(t, `head -c 30000000 /dev/zero | tr '\0' 'x'; echo; echo "login: "; exec sh`)
	ctx := context.Background()
	g, err := Start(ctx, Options{Kernel: kernel, Image: "/img", Sandbox: fakeKernel})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	if _, err := g.Expect(ctx, "login:", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if out, status, err := g.Run(ctx, "echo after-the-flood", 10*time.Second); err != nil || out != "after-the-flood" || status != 0 {
		t.Errorf("a command after the flood: %q %d %v", out, status, err)
	}
	if n := len(g.Console()); n > ConsoleKept {
		t.Errorf("%d bytes of console kept, bound %d", n, ConsoleKept)
	}
}

// TestConsoleLog: a console log keeps its first ConsoleLogged bytes and says where it stopped.
func TestConsoleLog(t *testing.T) {
	var file strings.Builder
	log := ConsoleLog(&file)
	for _, n := range []int{ConsoleLogged - 10, 100, 1 << 20} {
		if got, err := log.Write(make([]byte, n)); got != n || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", n, got, err)
		}
	}
	if !strings.HasSuffix(file.String(), "this log stops at 64 MiB; the guest printed more]\n") || file.Len() > ConsoleLogged+100 {
		t.Errorf("log of %d bytes ending %q", file.Len(), file.String()[file.Len()-80:])
	}
}

// TestKernelEnv: the kernel gets the few variables it needs and simple-uml's own, never a token or
// the address of one of the user's sockets, and TMPDIR its run folder.
func TestKernelEnv(t *testing.T) {
	for k, v := range map[string]string{"GITHUB_TOKEN": "ghp_secret", "AWS_SECRET_ACCESS_KEY": "secret", "SSH_AUTH_SOCK": "/run/agent",
		"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/bus", "TMUX": "/tmp/tmux-0/default,1,0", "TMPDIR": "/elsewhere",
		"PATH": "/usr/bin:/bin", "LC_ALL": "C", "SUML_BOOT_MEM": "256M", "TERM": "xterm"} {
		t.Setenv(k, v)
	}
	env := strings.Join(kernelEnv("/run/folder"), "\n") + "\n"
	for _, want := range []string{"PATH=/usr/bin:/bin\n", "LC_ALL=C\n", "SUML_BOOT_MEM=256M\n", "TERM=xterm\n", "TMPDIR=/run/folder\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("the kernel's environment lacks %q:\n%s", want, env)
		}
	}
	for _, not := range []string{"secret", "GITHUB_TOKEN", "SSH_AUTH_SOCK", "DBUS_SESSION", "TMUX=", "/elsewhere"} {
		if strings.Contains(env, not) {
			t.Errorf("the kernel's environment has %q:\n%s", not, env)
		}
	}
}

// TestExpectFromWhereItLeftOff: the text "Kernel panic" that scrolled past before a wait began (a
// log the guest printed earlier) fails no wait, but a panic after that does.
func TestExpectFromWhereItLeftOff(t *testing.T) {
	kernel := script(t, `echo "grep found: Kernel panic - in an old log"; echo MARK; sleep 0.5; echo AFTER; sleep 0.5; echo "Kernel panic - not syncing: now"; sleep 30`)
	ctx := context.Background()
	g, err := Start(ctx, Options{Kernel: kernel, Image: "/img", Sandbox: fakeKernel})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(g.Console(), "MARK"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no MARK: %q", g.Console())
		}
	}
	g.skipConsole() // as Settle does
	if _, err := g.Expect(ctx, "AFTER", 5*time.Second); err != nil {
		t.Fatalf("a wait after the old panic: %v", err)
	}
	if _, err := g.Expect(ctx, "NEVER", 5*time.Second); err == nil || !strings.Contains(err.Error(), "kernel panic") {
		t.Errorf("a panic after the wait began: %v", err)
	}
}
