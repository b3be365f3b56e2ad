package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/lan"
	"github.com/simple-uml/simple-uml/build/uml"
	"github.com/simple-uml/simple-uml/build/usernet"
)

// attackModuleSource is the module root in a guest loads to run its code in the guest's kernel:
// host system calls from kernel context, at everything the sandbox keeps from the kernel process.
const attackModuleSource = "testdata/attack-module"

// buildAttackModule builds attackModuleSource against the kernel build folder buildDir (a kernel
// with module support) and returns the module's path.
func buildAttackModule(t testing.TB, buildDir string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(attackModuleSource)); err != nil {
		t.Fatal(err)
	}
	// `mage kernel` makes the linux target alone: modules_prepare adds what a module's link needs, and
	// as there is no Module.symvers, modpost is told to let the kernel's symbols go unlisted (the
	// kernel resolves them by name when it loads the module; it has no MODVERSIONS).
	for _, args := range [][]string{{"modules_prepare"}, {"M=" + dir, "KBUILD_MODPOST_WARN=1", "modules"}} {
		out, err := exec.Command("make", append([]string{"-C", buildDir, "ARCH=um", "SUBARCH=x86_64"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("building the attack module (make %s): %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return filepath.Join(dir, "suml_attack.ko")
}

// withFile returns a copy of image with the host file from written to the guest's path to.
func withFile(t testing.TB, image, from, to string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(image))
	copyFile(t, image, out, 0o644)
	debugfs, err := host.LookPath("debugfs")
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(debugfs, "-w", "-R", fmt.Sprintf("write %s %s", from, to), out).CombinedOutput(); err != nil {
		t.Fatalf("debugfs write %s: %v\n%s", to, err, msg)
	}
	return out
}

// attackLab: the attacker a on lan1, its victim b on lan1 and on lan2 (captured), where a is not.
const attackLab = `
[[lan]]
name = "lan1"

[[lan]]
name = "lan2"
capture = true

[[guest]]
name = "a"
image = %q
root_password = "suml"
uplink = true
interface = [{ lan = "lan1", address = "10.1.0.1/24" }]

[[guest]]
name = "b"
interface = [{ lan = "lan1", address = "10.1.0.2/24" }, { lan = "lan2", address = "10.2.0.2/24" }]
`

// TestGuestRootAttacks takes away the first layer (SECURITY.md): a lab guest's kernel loads modules
// (attackerKernel), and root in guest a loads one that runs host system calls from kernel context,
// i.e. as the host process of the guest. Each way out must be closed by the layers beneath: no host
// file read, nothing written beside a's COW file or into b's, no keystroke into b's console, no
// frame onto b's LAN, no UDP to a host service, no signal to or trace of a host process, no
// namespace, io_uring, host module, device node, terminal input or host program. Afterwards b is
// untouched and the lab stops cleanly.
func TestGuestRootAttacks(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	attackKernel, module := attackerKernel, attackModule
	if k, m := os.Getenv("SUML_E2E_ATTACK_KERNEL"), os.Getenv("SUML_E2E_ATTACK_MODULE"); k != "" && m != "" {
		attackKernel, module = k, m
	}
	if attackKernel == "" || module == "" {
		t.Fatal("no module-enabled kernel: run the whole package (the kernel end-to-end test builds one), or set SUML_E2E_ATTACK_KERNEL and SUML_E2E_ATTACK_MODULE")
	}
	ws, _, _ := e2ePair(t)
	image := withFile(t, filepath.Join(ws, "dist", "test.ext4"), module, "/suml_attack.ko")
	cfg := labConfig(t, map[string]string{"attack": fmt.Sprintf(attackLab, image)}, nil)
	// The lab's kernel is the attacker's, in a dist/ of its own beside the pair's image and record.
	cfg.Paths.Dist = t.TempDir()
	for _, name := range []string{"test.ext4", "test.json"} {
		copyFile(t, filepath.Join(ws, "dist", name), filepath.Join(cfg.Paths.Dist, name), 0o644)
	}
	copyFile(t, attackKernel, filepath.Join(cfg.Paths.Dist, kernel.LinuxName), 0o755)

	canary := attacktest.NewCanary(t, t.TempDir(), "id_ed25519")
	udp := tokenService(t, "udp", "127.0.0.1:0")
	victim := exec.Command("sleep", "600")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { victim.Process.Kill(); victim.Wait() }()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, stop := runningLab(t, ctx, cfg, "attack")
	bCOW := filepath.Join(r.Dir, "b", "guest.cow")
	// b's own writes (its login, its configuration) reach its COW file when its kernel flushes them,
	// up to ext4's commit interval later: flushed now, they cannot pass for a's later.
	syncB := func() {
		if out, status, err := r.Run(ctx, "b", "sync"); err != nil || status != 0 {
			t.Fatalf("sync in b: %q %d %v", out, status, err)
		}
	}
	syncB()
	before, err := os.ReadFile(bCOW)
	if err != nil {
		t.Fatal(err)
	}
	kernelPath := filepath.Join(cfg.Paths.Dist, kernel.LinuxName)
	kernelInfo, _ := os.Stat(kernelPath)
	insmod := fmt.Sprintf("insmod /suml_attack.ko canary=%s beside=%s other_cow=%s console=%s lan=%s runt=%s usernet=%s kernel=%s rundir=%s udp_port=%d victim=%d; dmesg | grep suml-attack",
		canary.Path, filepath.Join(r.Dir, "a", ".bashrc"), bCOW, r.ConsoleSocket("b"),
		filepath.Join(r.Sockets(), "lan2.sock"), filepath.Join(r.Sockets(), "lan1.sock"), userNetSocket(t, r.Pid("a")),
		kernelPath, filepath.Join(r.Dir, "a"), udp.port, victim.Process.Pid)
	out, _, err := r.Run(ctx, "a", insmod)
	if err != nil {
		t.Fatalf("guest a: %v\n%s", err, out)
	}
	results := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(line, "suml-attack "); ok {
			if what, result, ok := strings.Cut(rest, ": "); ok {
				results[what] = strings.TrimSpace(result)
			}
		}
	}
	if _, ok := results["done"]; !ok {
		t.Fatalf("the module did not finish its attacks; guest a printed:\n%s", out)
	}
	t.Logf("guest a's kernel, from kernel context:\n%s", out)
	const (
		eperm        = "-1"
		eacces       = "-13"
		eafnosupport = "-97"
	)
	for what, want := range map[string]string{
		"read canary":        eacces, // Landlock: not a file of the guest's
		"create beside cow":  eacces, // Landlock: the rule is on the COW file, not its folder
		"write other cow":    eacces,
		"udp socket":         eafnosupport, // the system-call filter: unix sockets only
		"signal victim":      eperm,        // Landlock's scope
		"trace victim":       eperm,
		"signal parent":      eperm, // no thread of the lab's process is in the sandbox
		"trace parent":       eperm,
		"limit victim":       eperm, // the system-call filter: only its own limits
		"chmod canary":       eperm, // the system-call filter: no mode by path without a shared folder
		"watch canary":       eperm,
		"new session":        eperm,
		"fchmod kernel":      eperm, // its own executable, which it may open, but not change (no shared folder)
		"user namespace":     eperm, // the system-call filter
		"io_uring":           eperm,
		"load host module":   eperm,
		"type into terminal": eperm,
		"device node":        eacces, // no Landlock right to make one (nor CAP_MKNOD, for root)
		"run host program":   eacces,
	} {
		if got := results[what]; got != want {
			t.Errorf("%s: %q, want %s", what, got, want)
		}
	}
	// b's console and LAN: their sockets' paths are the kernel's to connect to where Landlock has
	// no right for unix sockets (before ABI 9), so the servers refuse what comes: the console wants
	// the lab's token, the LAN only the kernels of guests on it.
	t.Logf("connect to b's console: %s, typed %s; connect to lan2: %s, sent %s (Landlock before ABI 9 lets a connection to a socket's path through)",
		results["connect console"], results["type into console"], results["connect lan"], results["send lan"])
	// Whatever reached b is flushed before its COW file is compared; then b is asked.
	syncB()
	if after, err := os.ReadFile(bCOW); err != nil || !bytes.Equal(before, after) {
		t.Errorf("b's COW file changed from a (%v)", err)
	}
	if out, _, err := r.Run(ctx, "b", "ls /pwned-from-a 2>&1"); err != nil || !strings.Contains(out, "No such file") {
		t.Errorf("what a typed into b's console reached b: %q %v", out, err)
	}
	if udp.heard() {
		t.Error("the host's UDP service received a datagram from a's kernel")
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "a", ".bashrc")); !os.IsNotExist(err) {
		t.Errorf("a file beside a's COW file: %v", err)
	}
	if err := victim.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the host process a signalled: %v", err)
	}
	canary.Check(t)
	// b still answers, a is still a guest: the attack took down neither.
	if out, _, err := r.Run(ctx, "b", "echo b-alive"); err != nil || !strings.Contains(out, "b-alive") {
		t.Errorf("b after the attack: %q %v", out, err)
	}
	if out, _, err := r.Run(ctx, "a", "echo a-alive"); err != nil || !strings.Contains(out, "a-alive") {
		t.Errorf("a after the attack: %q %v", out, err)
	}
	// The runt a's kernel wrote to its own LAN (which would deadlock gvisor-tap-vsock's switch for good)
	// was dropped before the switch: lan1 still carries a's frames to b.
	if fd, err := strconv.Atoi(results["open kernel"]); err != nil || fd < 0 {
		t.Errorf("the kernel's own executable did not open (%q): the fchmod tried nothing", results["open kernel"])
	}
	if results["send runt"] != "11" || results["send usernet runt"] != "3" {
		t.Errorf("the runt frames were not sent (%q, %q): nothing was tried", results["send runt"], results["send usernet runt"])
	}
	if info, err := os.Stat(kernelPath); err != nil || info.Mode() != kernelInfo.Mode() {
		t.Errorf("the kernel's mode changed from %v: %v %v", kernelInfo.Mode(), info, err)
	}
	if out, _, err := r.Run(ctx, "a", "ping -c 1 -W 5 10.1.0.2 >/dev/null && echo lan-ok"); err != nil || !strings.Contains(out, "lan-ok") {
		t.Errorf("after the runt, a no longer reaches b on lan1: %q %v", out, err)
	}
	capture := r.CapturePath("lan2")
	if d := stop(); d > 10*time.Second {
		t.Errorf("the lab took %s to stop", d)
	}
	if data, err := os.ReadFile(capture); err != nil || bytes.Contains(data, []byte("suml-attack-frame")) {
		t.Errorf("lan2's capture holds a's frame (or: %v)", err)
	}
	if left := labLeftovers(cfg, nil); len(left) > 0 {
		t.Errorf("left after the lab stopped: %v", left)
	}
}

// runningLab starts lab name for a test and returns it with what stops it (once) and says how long
// that took; the test's end stops it if the test did not.
func runningLab(t testing.TB, ctx context.Context, cfg config.Config, name string) (*lab.Running, func() time.Duration) {
	t.Helper()
	r, err := startLab(ctx, cfg, name, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() time.Duration {
		start := time.Now()
		stopped := make(chan struct{})
		go func() { once.Do(r.Stop); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(time.Minute):
			t.Errorf("lab %s did not stop within a minute", name)
		}
		return time.Since(start)
	}
	t.Cleanup(func() { stop() })
	return r, stop
}

// userNetSocket is the user network's socket a guest's kernel joined, as its command line names it.
func userNetSocket(t testing.TB, pid int) string {
	t.Helper()
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if _, spec, ok := strings.Cut(arg, "vec0:transport=bess,dst="); ok {
			sock, _, _ := strings.Cut(spec, ",")
			return sock
		}
	}
	t.Fatalf("guest kernel %d has no user network: %q", pid, cmdline)
	return ""
}

// floodLab: guest a floods what the host keeps for it (its user network with the door to the host
// open, its console, the LAN it shares with b); b is there to be reached afterwards.
const floodLab = `
[[lan]]
name = "lan"

[[guest]]
name = "a"
image = %q
root_password = "suml"
uplink = true
host_access = true
interface = [{ lan = "lan", address = "10.5.0.1/24" }]

[[guest]]
name = "b"
interface = [{ lan = "lan", address = "10.5.0.2/24" }]
`

// hostUse is what this process (which carries every guest's network and console in a lab) holds.
type hostUse struct {
	fds    int
	rssMiB int
}

func measureHost() hostUse {
	var u hostUse
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		u.fds = len(fds)
	}
	if data, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kib, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
				u.rssMiB = kib >> 10
			}
		}
	}
	return u
}

// peakHostUse measures this process every 20 ms while f runs and returns the most it held.
func peakHostUse(f func()) hostUse {
	done := make(chan struct{})
	peak := make(chan hostUse)
	go func() {
		var max hostUse
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			u := measureHost()
			max.fds, max.rssMiB = maxInt(max.fds, u.fds), maxInt(max.rssMiB, u.rssMiB)
			select {
			case <-done:
				peak <- max
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	return <-peak
}

func maxInt(a, b int) int { return max(a, b) }

// buildGuestFlood builds testdata/guestflood for the guest: static, x86-64 Linux.
func buildGuestFlood(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "guestflood")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/guestflood")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building guestflood: %v\n%s", err, msg)
	}
	return out
}

// TestGuestFloods: root in a lab guest grows each thing the host keeps for it, with the project's
// own kernel, and this process (the lab's: its networks, consoles and LAN) stays within the limits
// SECURITY.md lists while it happens, measured every 20 ms: descriptors for UDP flows and TCP
// connections, memory for console output and source addresses; runt frames do not stop the LAN;
// the lab still stops in bounded time.
func TestGuestFloods(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, _, _ := e2ePair(t)
	image := withFile(t, filepath.Join(ws, "dist", "test.ext4"), buildGuestFlood(t), "/guestflood")
	cfg := labConfig(t, map[string]string{"flood": fmt.Sprintf(floodLab, image)}, nil)
	// A host service that completes TCP handshakes and never accepts: each connection the user network
	// makes to it holds one descriptor here, none in the service.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	udp := tokenService(t, "udp", "127.0.0.1:0")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, stop := runningLab(t, ctx, cfg, "flood")
	run := func(guest, command string) string {
		t.Helper()
		out, status, err := r.Run(ctx, guest, command)
		if err != nil || status != 0 {
			t.Fatalf("%s: %s: status %d, %v\n%s", guest, command, status, err, out)
		}
		return out
	}
	run("a", "chmod 755 /guestflood")
	base := measureHost()
	t.Logf("the lab's process before: %d descriptors, %d MiB resident", base.fds, base.rssMiB)

	floods := []struct {
		name    string
		command string
		maxFDs  int // more descriptors than before, at most
		maxMiB  int // more memory than before, at most
	}{
		{"5000 UDP flows", fmt.Sprintf("/guestflood udp 5000 10.0.2.2:%d", udp.port), usernet.MaxUDP + 16, 64},
		{"1500 TCP connections held", fmt.Sprintf("/guestflood tcp 1500 10.0.2.2:%d 3", held.Addr().(*net.TCPAddr).Port), usernet.MaxTCP + 16, 64},
		// 32 times what is kept: the process grows by what it keeps and copies, not by what passed.
		{"256 MiB of console output", "/guestflood console 268435456", 16, 128},
		{"100,000 source addresses on the LAN", "/guestflood macs 100000 vec1", 16, 64},
		// The guest's kernel pads or refuses them (a packet socket); TestGuestRootAttacks sends one from
		// kernel context.
		{"runt frames on the LAN", "/guestflood runts 1000 vec1", 16, 64},
	}
	received := func() int {
		n, _ := strconv.Atoi(lastLine(run("b", "cat /sys/class/net/vec1/statistics/rx_packets")))
		return n
	}
	for _, f := range floods {
		// Against what the process held just before: the UDP flows stay until they have been quiet
		// for a while (usernet), beside the next flood.
		var out string
		start, base, rx := time.Now(), measureHost(), received()
		peak := peakHostUse(func() { out = run("a", f.command) })
		t.Logf("%s (%s): %s; peak %d descriptors (+%d), %d MiB resident (+%d); b received %d frames", f.name, time.Since(start).Round(time.Millisecond),
			strings.TrimSpace(lastLine(out)), peak.fds, peak.fds-base.fds, peak.rssMiB, peak.rssMiB-base.rssMiB, received()-rx)
		if peak.fds-base.fds > f.maxFDs {
			t.Errorf("%s: the lab's process held %d descriptors more, want %d at most", f.name, peak.fds-base.fds, f.maxFDs)
		}
		if peak.rssMiB-base.rssMiB > f.maxMiB {
			t.Errorf("%s: the lab's process grew by %d MiB, want %d at most", f.name, peak.rssMiB-base.rssMiB, f.maxMiB)
		}
		// Of a's frames from new source addresses, the switch gets those of lan.MaxMACs addresses
		// at most (a's own is one): b hears no more (and a few of its own reads and ARP).
		if strings.HasPrefix(f.command, "/guestflood macs") && received()-rx > lan.MaxMACs+16 {
			t.Errorf("%s: b received %d frames, want %d at most", f.name, received()-rx, lan.MaxMACs+16)
		}
		// After each, the LAN still carries a's frames to b.
		if out, _, err := r.Run(ctx, "a", "ping -c 1 -W 5 10.5.0.2 >/dev/null && echo lan-ok"); err != nil || !strings.Contains(out, "lan-ok") {
			t.Errorf("after %s, a no longer reaches b on the LAN: %q %v", f.name, out, err)
		}
	}
	if out := run("b", "echo b-alive"); !strings.Contains(out, "b-alive") {
		t.Errorf("b after the floods: %q", out)
	}
	if fi, err := os.Stat(r.ConsolePath("a")); err != nil || fi.Size() > uml.ConsoleLogged+1<<20 {
		t.Errorf("a's console log: %v, want at most %d bytes", err, uml.ConsoleLogged)
	}
	if d := stop(); d > 10*time.Second {
		t.Errorf("the lab took %s to stop after the floods", d)
	}
	if left := labLeftovers(cfg, nil); len(left) > 0 {
		t.Errorf("left after the lab stopped: %v", left)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
