package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/peer"
)

// instanceState reads instance name's state as ps does.
func instanceState(t *testing.T, state, name string) instance.Status {
	t.Helper()
	all, err := instance.List(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no instance %s in %v", name, all)
	return instance.Status{}
}

// waitInstance waits until cond holds for instance name's status.
func waitInstance(t *testing.T, state, name string, cond func(instance.Status) bool) instance.Status {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := instanceState(t, state, name)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s: %+v", name, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestInstancesOnStandIns: up runs a guest in the background under a supervisor of its own that
// outlives the call; ps lists it; console types into it; a panic brings it back under on-failure and
// leaves it crashed under no; logs has what it printed; stop, up, reset and rm do what they say and
// leave no process; an unknown name lists the instances.
func TestInstancesOnStandIns(t *testing.T) {
	env := guestDist(t, "6.12.117")
	env["SUML_STATE"] = t.TempDir()
	privateTemp(t)
	cfg := loadConfig(t, env, nil)
	ctx := context.Background()
	var out bytes.Buffer
	if err := Up(ctx, cfg, "web", "on-failure", &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	first := instanceState(t, cfg.Paths.State, "web")
	if first.State.Phase != instance.PhaseReady || !first.Running || first.State.Kernel == 0 {
		t.Fatalf("after up: %+v", first)
	}
	t.Cleanup(func() { Remove(cfg, "web", &out) })

	screen := attachAndType(t, cfg, "web", "root\nvoidlinux\n", "echo typed-$((6*7))\n", "typed-42")
	if !strings.Contains(screen, "typed-42") {
		t.Errorf("the console did not answer:\n%s", screen)
	}

	// A panic from inside: on-failure boots it again.
	attachAndType(t, cfg, "web", "", "echo 'Kernel panic - not syncing: from inside'; exit 1\n", "Kernel panic")
	again := waitInstance(t, cfg.Paths.State, "web", func(s instance.Status) bool {
		return s.State.Restarts == 1 && s.State.Phase == instance.PhaseReady
	})
	if again.State.Kernel == first.State.Kernel || again.State.Supervisor != first.State.Supervisor {
		t.Errorf("after the panic: %+v, want a new kernel under the same supervisor", again)
	}
	var logs bytes.Buffer
	if err := Logs(ctx, cfg, "web", false, &logs); err != nil || !strings.Contains(logs.String(), "typed-42") || !strings.Contains(logs.String(), "crashed (kernel panic); restart on-failure") {
		t.Errorf("logs: %v\n%s", err, logs.String())
	}
	var ps bytes.Buffer
	if err := Ps(cfg, &ps); err != nil || !strings.Contains(ps.String(), "web") || !strings.Contains(ps.String(), "on-failure") {
		t.Errorf("ps: %v\n%s", err, ps.String())
	}

	// Stop, then up again over the same disk; reset gives a new one.
	cow := filepath.Join(instance.Dir(cfg.Paths.State, "web"), "guest.cow")
	if err := StopInstance(cfg, "web", &out); err != nil {
		t.Fatal(err)
	}
	if s := instanceState(t, cfg.Paths.State, "web"); s.Running || s.State.Phase != instance.PhaseStopped || peer.Alive(again.State.Supervisor) || peer.Alive(again.State.Kernel) {
		t.Errorf("after stop: %+v (supervisor alive %v, kernel alive %v)", s, peer.Alive(again.State.Supervisor), peer.Alive(again.State.Kernel))
	}
	// What the guest wrote (the stand-in writes nothing: the test writes for it).
	f, err := os.OpenFile(cow, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("the COW file after stop: %v", err)
	}
	f.WriteString("written-by-the-guest")
	f.Close()
	written := func() bool { data, _ := os.ReadFile(cow); return bytes.Contains(data, []byte("written-by-the-guest")) }
	if err := Up(ctx, cfg, "web", "", &out); err != nil {
		t.Fatal(err)
	}
	if !written() {
		t.Error("up after stop did not keep the COW file")
	}
	if err := Reset(ctx, cfg, "web", &out); err != nil {
		t.Fatal(err)
	}
	if written() || !files.Exists(cow) {
		t.Errorf("reset kept the COW file's writes, or made no new one (exists: %v)", files.Exists(cow))
	}
	if s := instanceState(t, cfg.Paths.State, "web"); s.State.Phase != instance.PhaseReady {
		t.Errorf("reset of a running instance: %+v, want it running again", s)
	}

	// Under restart no, a panic leaves it crashed, and says so.
	if err := Up(ctx, cfg, "once", "no", &out); err != nil {
		t.Fatal(err)
	}
	attachAndType(t, cfg, "once", "root\nvoidlinux\n", "echo 'Kernel panic - not syncing: from inside'; exit 1\n", "Kernel panic")
	waitInstance(t, cfg.Paths.State, "once", func(s instance.Status) bool { return !s.Running && s.State.Phase == instance.PhaseCrashed })

	if err := StopInstance(cfg, "nosuch", &out); err == nil || !strings.Contains(err.Error(), `unknown instance "nosuch"`) || !strings.Contains(err.Error(), "once, web") {
		t.Errorf("an unknown instance: %v", err)
	}
	kernel := instanceState(t, cfg.Paths.State, "web").State
	for _, name := range []string{"web", "once"} {
		if err := Remove(cfg, name, &out); err != nil {
			t.Fatal(err)
		}
	}
	if names, _ := instance.Names(cfg.Paths.State); len(names) > 0 || peer.Alive(kernel.Kernel) || peer.Alive(kernel.Supervisor) {
		t.Errorf("after rm: instances %v, kernel alive %v, supervisor alive %v", names, peer.Alive(kernel.Kernel), peer.Alive(kernel.Supervisor))
	}
}

// attachAndType attaches to instance name's console through a pipe, types login, then command, and
// returns the screen once it shows want (or after 10 s), leaving with Ctrl-].
func attachAndType(t *testing.T, cfg config.Config, name, login, command, want string) string {
	t.Helper()
	in, keys, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	var screen syncBuffer
	done := make(chan error, 1)
	go func() { done <- Console(context.Background(), cfg, name, in, &screen) }()
	time.Sleep(200 * time.Millisecond)
	keys.WriteString(login)
	time.Sleep(200 * time.Millisecond)
	keys.WriteString(command)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(screen.String(), want) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	keys.Write([]byte{0x1d})
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("Ctrl-] did not leave the console")
	}
	return screen.String()
}

// TestLabInstanceOnStandIns: up of a lab's name runs the lab as an instance: ready once every
// guest is configured; ps lists it as a lab with its guests' memory; console and logs reach a guest
// by <lab>/<guest>; the guests' disks stay across stop and up and go with reset; a guest's panic
// brings the whole lab back under on-failure; rm leaves no process.
func TestLabInstanceOnStandIns(t *testing.T) {
	privateTemp(t)
	env := standInLabConfig(t, "configured")
	env["SUML_STATE"] = t.TempDir()
	cfg := loadConfig(t, env, nil)
	ctx := context.Background()
	var out bytes.Buffer
	if err := Up(ctx, cfg, "pair", "on-failure", &out); err != nil || !strings.Contains(out.String(), "lab instance pair: ready") {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Cleanup(func() { Remove(cfg, "pair", &out) })
	first := instanceState(t, cfg.Paths.State, "pair")
	if first.Kind != "lab" || len(first.State.Guests) != 2 || !peer.Alive(first.State.Guests[0]) || !peer.Alive(first.State.Guests[1]) || first.Memory == 0 {
		t.Fatalf("after up: %+v", first)
	}
	var ps bytes.Buffer
	guestPids := fmt.Sprintf("%d/%d,%d", first.State.Supervisor, first.State.Guests[0], first.State.Guests[1])
	if err := Ps(cfg, &ps); err != nil || !strings.Contains(ps.String(), "lab") || !strings.Contains(ps.String(), guestPids) || strings.Count(ps.String(), "\n") != 2 {
		t.Errorf("ps: %v (want the lab on one line, its guests not listed as foreground ones)\n%s", err, ps.String())
	}

	if err := Console(ctx, cfg, "pair", os.Stdin, &out); err == nil || !strings.Contains(err.Error(), "console pair/<guest>") || !strings.Contains(err.Error(), "a, b") {
		t.Errorf("console of the lab itself: %v", err)
	}
	if err := Console(ctx, cfg, "pair/c", os.Stdin, &out); err == nil || !strings.Contains(err.Error(), `no guest "c"`) {
		t.Errorf("console of a guest the lab has not: %v", err)
	}
	// The lab logged in as root and configured b: its shell answers.
	if screen := attachAndType(t, cfg, "pair/b", "", "echo typed-$((6*7))\n", "typed-42"); !strings.Contains(screen, "typed-42") {
		t.Errorf("b's console did not answer:\n%s", screen)
	}
	var logs bytes.Buffer
	if err := Logs(ctx, cfg, "pair/b", false, &logs); err != nil || !strings.Contains(logs.String(), "typed-42") {
		t.Errorf("logs pair/b: %v\n%s", err, logs.String())
	}

	// a panics: the lab comes back whole, under the same supervisor.
	attachAndType(t, cfg, "pair/a", "", "echo 'Kernel panic - not syncing: from inside'; exit 1\n", "Kernel panic")
	again := waitInstance(t, cfg.Paths.State, "pair", func(s instance.Status) bool {
		return s.State.Restarts == 1 && s.State.Phase == instance.PhaseReady
	})
	if again.State.Supervisor != first.State.Supervisor || again.State.Guests[1] == first.State.Guests[1] || peer.Alive(first.State.Guests[1]) {
		t.Errorf("after a's panic: %+v, want both guests new under the same supervisor", again)
	}
	logs.Reset()
	if err := Logs(ctx, cfg, "pair", false, &logs); err != nil || !strings.Contains(logs.String(), "a panicked") || !strings.Contains(logs.String(), "restart on-failure") {
		t.Errorf("logs pair: %v\n%s", err, logs.String())
	}

	// Stop, then up again over the same disks; reset gives new ones.
	cow := filepath.Join(instance.Dir(cfg.Paths.State, "pair"), "disks", "b", "guest.cow")
	if err := StopInstance(cfg, "pair", &out); err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(again.State.Guests, again.State.Supervisor) {
		if peer.Alive(pid) {
			t.Errorf("pid %d outlived stop", pid)
		}
	}
	f, err := os.OpenFile(cow, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("b's COW file after stop: %v", err)
	}
	f.WriteString("written-by-the-guest")
	f.Close()
	written := func() bool { data, _ := os.ReadFile(cow); return bytes.Contains(data, []byte("written-by-the-guest")) }
	if err := Up(ctx, cfg, "pair", "", &out); err != nil || !written() {
		t.Fatalf("up after stop: %v; the disk kept: %v", err, written())
	}
	if err := Reset(ctx, cfg, "pair", &out); err != nil || written() {
		t.Errorf("reset: %v; the disk kept: %v", err, written())
	}
	last := instanceState(t, cfg.Paths.State, "pair")
	if err := Remove(cfg, "pair", &out); err != nil {
		t.Fatal(err)
	}
	for _, pid := range append(last.State.Guests, last.State.Supervisor) {
		if peer.Alive(pid) {
			t.Errorf("pid %d outlived rm", pid)
		}
	}
}
