package pipeline

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/peer"
)

// mage runs the compiled magefile with args as the bench's user, and returns what it printed.
func (b *signalBench) mageOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := b.command(b.mage, args...).CombinedOutput()
	return string(out), err
}

// console attaches to instance name's console as a person would through `mage console`, types the
// lines one by one, and returns what it showed once want appears (or after 20 s), leaving with Ctrl-].
func (b *signalBench) console(t *testing.T, name, want string, lines ...string) string {
	t.Helper()
	cmd := b.command(b.mage, "console", name)
	keys, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var screen syncBuffer
	cmd.Stdout, cmd.Stderr = &screen, &screen
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(10*time.Second, func() bool { return strings.Contains(screen.String(), "Ctrl-] leaves") })
	for _, l := range lines {
		keys.Write([]byte(l))
		time.Sleep(300 * time.Millisecond)
	}
	waitFor(20*time.Second, func() bool { return strings.Contains(screen.String(), want) })
	keys.Write([]byte{0x1d})
	keys.Close()
	cmd.Wait()
	return screen.String()
}

// state reads instance name's state as ps does.
func (b *signalBench) state(name string) instance.State {
	var st instance.State
	files.ReadJSON(filepath.Join(instance.Dir(filepath.Join(b.dir, "state"), name), "state.json"), &st)
	return st
}

// TestInstancesEndToEnd: instances of the end-to-end pair, as an ordinary user, through the compiled
// magefile: up returns once the guest is ready and the guest outlives the terminal up ran in; ps
// lists it; console types into it; a file written (not synced: stop settles the disk) stays across
// stop and up, and goes with reset; a
// panic from inside (sysrq c) brings it back under on-failure and leaves it crashed under no; a boot
// of its COW file is refused naming its kernel; rm leaves no process and no folder.
func TestInstancesEndToEnd(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, _, owner := e2ePair(t)
	b := newSignalBench(t, ws, owner)
	login := []string{"\n", "root\n", "suml\n"}

	// up on a terminal that then closes: the guest stays.
	r := b.start(t, "up", "web", "-restart=on-failure")
	if err := r.cmd.Wait(); err != nil || !strings.Contains(r.out.String(), "instance web: ready") {
		t.Fatalf("mage up: %v\n%s", err, r.out.String())
	}
	r.stdin.Close()
	first := b.state("web")
	if first.Phase != instance.PhaseReady || !peer.Alive(first.Supervisor) || !peer.Alive(first.Kernel) {
		t.Fatalf("after up, its terminal gone: %+v", first)
	}
	t.Cleanup(func() { b.mageOut(t, "rm", "web"); b.mageOut(t, "rm", "once") })
	if ps, err := b.mageOut(t, "ps"); err != nil || !strings.Contains(ps, "web") || !strings.Contains(ps, "ready") || !strings.Contains(ps, "on-failure") {
		t.Errorf("ps: %v\n%s", err, ps)
	}

	screen := b.console(t, "web", "typed-42", append(login, "echo kept > /root/mark; echo typed-$((6*7))\n")...)
	if !strings.Contains(screen, "typed-42") {
		t.Fatalf("the console did not answer:\n%s", screen)
	}
	if out, err := b.mageOut(t, "stop", "web"); err != nil || peer.Alive(first.Kernel) || peer.Alive(first.Supervisor) {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if logs, _ := b.mageOut(t, "logs", "web"); !strings.Contains(logs, "Emergency Remount complete") || strings.Contains(logs, "not settled") || strings.Contains(logs, "without the guest's disk settled") {
		t.Errorf("stop did not settle the guest's disk over its management console:\n%s", logs)
	}
	if out, err := b.mageOut(t, "up", "web"); err != nil {
		t.Fatalf("up again: %v\n%s", err, out)
	}
	if screen := b.console(t, "web", "kept", append(login, "cat /root/mark\n")...); !strings.Contains(screen, "\nkept") {
		t.Errorf("the file written before stop is gone:\n%s", screen)
	}

	// A boot of its COW file, while it runs, is refused by name.
	boot := b.command(b.mage, "boot")
	boot.Env = append(boot.Env, "SUML_BOOT_COW="+filepath.Join(b.dir, "state", "instances", "web", "guest.cow"))
	if out, err := boot.CombinedOutput(); err == nil || !strings.Contains(string(out), fmt.Sprintf("is in use by instance web, pid %d", b.state("web").Kernel)) {
		t.Errorf("a boot of the instance's COW file: %v\n%s", err, out)
	}

	// sysrq c: on-failure brings it back.
	b.console(t, "web", "Kernel panic", append(login, "echo c > /proc/sysrq-trigger\n")...)
	if !waitFor(30*time.Second, func() bool { st := b.state("web"); return st.Restarts == 1 && st.Phase == instance.PhaseReady }) {
		t.Errorf("after a panic under on-failure: %+v", b.state("web"))
	}
	if out, err := b.mageOut(t, "reset", "web"); err != nil || !strings.Contains(out, "pristine") {
		t.Errorf("reset: %v\n%s", err, out)
	}
	if screen := b.console(t, "web", "No such file", append(login, "cat /root/mark\n")...); !strings.Contains(screen, "No such file") {
		t.Errorf("the file is still there after reset:\n%s", screen)
	}

	// restart no: a panic leaves it crashed, and ps says so.
	if out, err := b.mageOut(t, "up", "once", "-restart=no"); err != nil {
		t.Fatalf("up once: %v\n%s", err, out)
	}
	b.console(t, "once", "Kernel panic", append(login, "echo c > /proc/sysrq-trigger\n")...)
	waitFor(30*time.Second, func() bool { return b.state("once").Phase == instance.PhaseCrashed })
	if ps, _ := b.mageOut(t, "ps"); !strings.Contains(ps, "crashed") {
		t.Errorf("ps after a panic under no:\n%s", ps)
	}
	if logs, err := b.mageOut(t, "logs", "once"); err != nil || !strings.Contains(logs, "Kernel panic") || bytes.ContainsAny([]byte(logs), "\x1b\r") {
		t.Errorf("logs: %v (want the panic, and no control character)\n%s", err, logs)
	}

	web := b.state("web")
	for _, name := range []string{"web", "once"} {
		if out, err := b.mageOut(t, "rm", name); err != nil {
			t.Errorf("rm %s: %v\n%s", name, err, out)
		}
	}
	if peer.Alive(web.Kernel) || peer.Alive(web.Supervisor) || len(umlProcesses(filepath.Join(b.dir, "state"))) > 0 {
		t.Errorf("processes left after rm:\n%s", strings.Join(umlProcesses(filepath.Join(b.dir, "state")), "\n"))
	}
	if entries, _ := os.ReadDir(filepath.Join(b.dir, "state", "instances")); len(entries) > 0 {
		t.Errorf("instance folders left after rm: %v", entries)
	}
}

// TestLabInstanceEndToEnd: a 3-guest lab as an instance, as an ordinary user, through the compiled
// magefile: up returns once it is ready; ps lists it; a guest's console reaches the other LAN
// through the router; a file written stays across stop and up, and goes with reset; a panic from
// inside one guest (sysrq c) brings the lab back under on-failure; rm leaves no process and no
// folder.
func TestLabInstanceEndToEnd(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, _, owner := e2ePair(t)
	b := newSignalBench(t, ws, owner)
	// A router between two LANs, a guest on each (scripts/bench-instances.sh times the same lab).
	copyFile(t, filepath.Join("testdata", "labs", "trio.toml"), filepath.Join(b.dir, "labs", "trio.toml"), 0o644)
	t.Cleanup(func() { b.mageOut(t, "rm", "trio") })
	if out, err := b.mageOut(t, "up", "trio", "-restart=on-failure"); err != nil || !strings.Contains(out, "lab instance trio: ready") {
		t.Fatalf("mage up trio: %v\n%s", err, out)
	}
	first := b.state("trio")
	if ps, err := b.mageOut(t, "ps"); err != nil || !strings.Contains(ps, "trio") || !strings.Contains(ps, "lab") || !strings.Contains(ps, "ready") {
		t.Errorf("ps: %v\n%s", err, ps)
	}
	screen := b.console(t, "trio/a", "reached-42", "\n", "ping -c 1 -W 5 10.9.2.1 >/dev/null && echo reached-$((6*7))\n", "echo kept > /root/mark\n")
	if !strings.Contains(screen, "reached-42") {
		t.Fatalf("a did not reach c through r:\n%s", screen)
	}
	if logs, err := b.mageOut(t, "logs", "trio/a"); err != nil || !strings.Contains(logs, "reached-42") {
		t.Errorf("logs trio/a: %v\n%s", err, logs)
	}

	if out, err := b.mageOut(t, "stop", "trio"); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	for _, pid := range append(first.Guests, first.Supervisor) {
		if peer.Alive(pid) {
			t.Errorf("pid %d outlived stop", pid)
		}
	}
	if out, err := b.mageOut(t, "up", "trio"); err != nil {
		t.Fatalf("up again: %v\n%s", err, out)
	}
	if screen := b.console(t, "trio/a", "kept", "\n", "cat /root/mark\n"); !strings.Contains(screen, "\nkept") {
		t.Errorf("the file a wrote before stop is gone:\n%s", screen)
	}

	// sysrq c in c: on-failure brings the lab back, a's disk with it.
	b.console(t, "trio/c", "Kernel panic", "\n", "echo c > /proc/sysrq-trigger\n")
	if !waitFor(90*time.Second, func() bool { st := b.state("trio"); return st.Restarts == 1 && st.Phase == instance.PhaseReady }) {
		t.Errorf("after c's panic under on-failure: %+v", b.state("trio"))
	}
	// A guest's console log goes on across the lab's runs: the panic, then the next run.
	b.console(t, "trio/c", "after-restart-7", "\n", "echo after-restart-$((3+4))\n")
	if logs, err := b.mageOut(t, "logs", "trio/c"); err != nil || !regexp.MustCompile(`(?s)Kernel panic.*after-restart-7`).MatchString(logs) {
		t.Errorf("logs trio/c after the restart: %v (want the panic, then the next run)\n%s", err, logs)
	}
	if out, err := b.mageOut(t, "reset", "trio"); err != nil || !strings.Contains(out, "pristine") {
		t.Errorf("reset: %v\n%s", err, out)
	}
	if screen := b.console(t, "trio/a", "No such file", "\n", "cat /root/mark\n"); !strings.Contains(screen, "No such file") {
		t.Errorf("the file is still there after reset:\n%s", screen)
	}

	last := b.state("trio")
	if out, err := b.mageOut(t, "rm", "trio"); err != nil {
		t.Errorf("rm: %v\n%s", err, out)
	}
	for _, pid := range append(last.Guests, last.Supervisor) {
		if peer.Alive(pid) {
			t.Errorf("pid %d outlived rm", pid)
		}
	}
	if left := umlProcesses(filepath.Join(b.dir, "state")); len(left) > 0 { // its kernels and supervisor run from there
		t.Errorf("processes left after rm:\n%s", strings.Join(left, "\n"))
	}
	if entries, _ := os.ReadDir(filepath.Join(b.dir, "state", "instances")); len(entries) > 0 {
		t.Errorf("instance folders left after rm: %v", entries)
	}
}
