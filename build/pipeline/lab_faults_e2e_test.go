package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/lab"
)

// pairLab is two guests on one LAN; b serves its name over HTTP.
const pairLab = `
[[lan]]
name = "lan"

[[guest]]
name = "a"
interface = [{ lan = "lan", address = "10.9.0.1/24" }]

[[guest]]
name = "b"
args = "%s"
interface = [{ lan = "lan", address = "10.9.0.2/24" }]
run = ["mkdir -p /srv && echo %s > /srv/index.html && httpd -p 80 -h /srv"]
`

// labConfig writes the named labs (name -> body) and returns the end-to-end pair's configuration
// with them, and extra settings.
func labConfig(t testing.TB, labs map[string]string, extra map[string]string) config.Config {
	t.Helper()
	ws, _, _ := e2ePair(t)
	privateTemp(t)
	dir := t.TempDir()
	for name, body := range labs {
		if err := os.WriteFile(filepath.Join(dir, name+".toml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"SUML_LABS": dir}
	for k, v := range extra {
		env[k] = v
	}
	return bootConfig(t, ws, env)
}

// privateTemp gives what the test starts a TMPDIR and a tmux server of its own, so that it judges
// only what it started (another user's labs leave folders in the machine's TMPDIR, and a developer's
// own tmux sessions are not the test's), and stops that server when the test ends.
func privateTemp(t testing.TB) {
	t.Helper()
	// Short, under /tmp: a unix socket's path in it has at most 107 bytes.
	dir, err := os.MkdirTemp("", "suml-t-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("TMPDIR", dir)
	t.Setenv("TMUX_TMPDIR", dir)
	t.Setenv("TMUX", "") // inside a tmux session, tmux would otherwise talk to that session's server
	t.Cleanup(func() {
		if _, err := exec.LookPath("tmux"); err == nil {
			exec.Command("tmux", "kill-server").Run()
		}
	})
}

// labLeftovers lists what only a running lab may leave: kernels of its run folders, and socket
// folders. sockets are the socket folders there were before.
func labLeftovers(cfg config.Config, sockets []string) []string {
	dirs, _ := filepath.Glob(filepath.Join(cfg.Paths.Cache, "run", "lab-*"))
	var out []string
	for _, d := range dirs {
		out = append(out, umlProcesses(d)...)
	}
	for _, s := range socketFolders() {
		if !slices.Contains(sockets, s) {
			out = append(out, s)
		}
	}
	return out
}

func socketFolders() []string {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "suml-lab-*"))
	return dirs
}

// TestLabFaults breaks labs in the ways a lab must survive or report: a guest that panics while
// booting, a guest never ready, a guest that panics mid-lab, Ctrl-C while starting, and two labs at
// once on the same addresses.
func TestLabFaults(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ctx := context.Background()

	t.Run("a guest that panics while booting is named and nothing is left", func(t *testing.T) {
		cfg := labConfig(t, map[string]string{"pair": fmt.Sprintf(pairLab, "init=/nonexistent", "b")}, nil)
		before := socketFolders()
		_, err := startLab(ctx, cfg, "pair", testLog(t))
		if err == nil || !strings.Contains(err.Error(), "guest b:") || !strings.Contains(err.Error(), "panic") {
			t.Fatalf("err = %v, want guest b's panic", err)
		}
		if strings.Contains(err.Error(), "guest a:") {
			t.Errorf("guest a, which came up, is blamed: %v", err)
		}
		if left := labLeftovers(cfg, before); len(left) > 0 {
			t.Errorf("left after a failed start: %v", left)
		}
	})

	t.Run("never ready: the timeout names each guest", func(t *testing.T) {
		cfg := labConfig(t, map[string]string{"pair": fmt.Sprintf(pairLab, "", "b")},
			map[string]string{"SUML_BOOT_READY": "a marker no console prints", "SUML_BOOT_TIMEOUT": "3"})
		before := socketFolders()
		_, err := startLab(ctx, cfg, "pair", testLog(t))
		if err == nil || !strings.Contains(err.Error(), "guest a:") || !strings.Contains(err.Error(), "guest b:") {
			t.Fatalf("err = %v, want both guests named", err)
		}
		if left := labLeftovers(cfg, before); len(left) > 0 {
			t.Errorf("left after a failed start: %v", left)
		}
	})

	t.Run("a guest that panics mid-lab: the others keep running and the lab reports it", func(t *testing.T) {
		cfg := labConfig(t, map[string]string{"pair": fmt.Sprintf(pairLab, "", "b")}, nil)
		r, err := startLab(ctx, cfg, "pair", testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Stop()
		// The command cannot finish: the guest is gone. What counts is what the lab says next.
		shortCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		r.Run(shortCtx, "b", "echo c > /proc/sysrq-trigger")
		cancel()
		deadline := time.Now().Add(10 * time.Second)
		for len(r.Down()) == 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if down := r.Down(); len(down) != 1 || !strings.HasPrefix(down[0], "b ") {
			t.Fatalf("down: %v, want b alone", down)
		}
		if out, status, err := r.Run(ctx, "a", "echo still up"); err != nil || status != 0 || out != "still up" {
			t.Errorf("a after b's panic: %q %d %v", out, status, err)
		}
	})

	t.Run("Ctrl-C while starting stops everything", func(t *testing.T) {
		cfg := labConfig(t, map[string]string{"pair": fmt.Sprintf(pairLab, "", "b")}, nil)
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(300*time.Millisecond, cancel)
		before := socketFolders()
		_, err := startLab(cctx, cfg, "pair", testLog(t))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want the start cancelled", err)
		}
		if left := labLeftovers(cfg, before); len(left) > 0 {
			t.Errorf("left after Ctrl-C: %v", left)
		}
	})

	t.Run("two labs at once on the same addresses: each has LANs of its own", func(t *testing.T) {
		cfg := labConfig(t, map[string]string{
			"one": fmt.Sprintf(pairLab, "", "served-in-one"),
			"two": fmt.Sprintf(pairLab, "", "served-in-two"),
		}, nil)
		labs := map[string]*lab.Running{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, name := range []string{"one", "two"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := startLab(ctx, cfg, name, testLog(t))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				labs[name] = r
				mu.Unlock()
			}()
		}
		wg.Wait()
		for _, r := range labs {
			defer r.Stop()
		}
		for name, r := range labs {
			out, status, err := r.Run(ctx, "a", "wget -q -O - http://10.9.0.2/")
			if err != nil || status != 0 || out != "served-in-"+name {
				t.Errorf("lab %s: a got %q (status %d, %v), want its own b's page", name, out, status, err)
			}
		}
	})
}

// waitForPane waits up to a minute for a tmux pane to show want, and returns what it shows.
func waitForPane(t testing.TB, pane, want string) string {
	t.Helper()
	var out []byte
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, _ = exec.Command("tmux", "capture-pane", "-p", "-t", pane).CombinedOutput()
		if strings.Contains(string(out), want) {
			break
		}
	}
	return string(out)
}

// TestLabWindows opens a lab's tmux windows many times in a row: every window attaches to its guest's
// console every time (they once compiled the magefile all at once, and most failed).
func TestLabWindows(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is not installed: CI installs it for this test (.ci/run)")
		}
		t.Skip("tmux is not installed")
	}
	cfg := labConfig(t, map[string]string{"three": fmt.Sprintf(threeGuests, freeLocalPort(t))}, nil)
	r, err := startLab(context.Background(), cfg, "three", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	current, err := r.Record(runFolder(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(current)
	const rounds = 10
	for round := range rounds {
		session, err := openLabTmux(context.Background(), cfg, r, consoleClient())
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, g := range r.Lab.Guests {
			if pane := waitForPane(t, session+":"+g.Name, "Ctrl-] leaves the console"); !strings.Contains(pane, "Ctrl-] leaves the console") {
				t.Errorf("round %d: %s's window is not attached to its console:\n%s", round, g.Name, pane)
			}
		}
		lab.CloseTmux(session)
	}
}

// labConsoleChild is the magefile's labConsole target, for the tmux windows Lab opens in the tests:
// they run this test binary as `<binary> labConsole <lab> <guest>`, as they run mage's.
func labConsoleChild(name, guest string) int {
	cfg, err := config.Load(".", nil)
	if err == nil {
		err = LabConsole(context.Background(), cfg, name, guest, os.Stdin, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "labConsole:", err)
		return 1
	}
	return 0
}

// consoleClient is what the tests' labs run in their tmux windows, with this test binary, as the
// magefile's Lab passes to the mage binary.
func consoleClient() []string { return []string{"labConsole"} }

// TestLabConsoles: mage lab serves each guest's console to its user while the lab runs (a socket in a
// folder only that user may enter, and a tmux window per guest where tmux is installed); a person
// attached types into the guest and reads its answers; Ctrl-C ends the lab and everything of it.
func TestLabConsoles(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	cfg := labConfig(t, map[string]string{"pair": fmt.Sprintf(pairLab, "", "b")}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log syncBuffer
	done := make(chan error, 1)
	go func() { done <- Lab(ctx, cfg, "pair", consoleClient(), &log) }()
	current := lab.RecordFile(runFolder(cfg), "pair")
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(log.String(), "lab pair is up") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	data, err := os.ReadFile(current)
	if err != nil {
		t.Fatalf("no record of the running lab: %v\n%s", err, log.String())
	}
	sockets, _, _ := strings.Cut(string(data), "\n")
	if fi, err := os.Stat(sockets); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the socket folder %s: %v %v, want mode 0700", sockets, fi, err)
	}

	// Whoever connects to a console without the lab's token (a guest's kernel gone hostile reaches
	// the socket's path: it is the same user) types nothing into the guest and reads nothing of it.
	if c, err := net.Dial("unix", filepath.Join(sockets, "a.console")); err != nil {
		t.Errorf("connecting to a's console: %v", err)
	} else {
		c.Write([]byte("\ntouch /pwned-without-token\n" + strings.Repeat("x", 64) + "\n"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if got, _ := io.ReadAll(c); len(got) > 0 {
			t.Errorf("a connection without the token read %q", got)
		}
		c.Close()
	}

	// A person attached to a's console (through a pipe, as tmux's window would through a terminal).
	in, typing, _ := os.Pipe()
	var screen syncBuffer
	attached := make(chan error, 1)
	go func() { attached <- LabConsole(ctx, cfg, "pair", "a", in, &screen) }()
	time.Sleep(300 * time.Millisecond)
	typing.WriteString("\necho typed-by-$((6*7)); ls /pwned-without-token\n")
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(screen.String(), "typed-by-42") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(screen.String(), "typed-by-42") {
		t.Errorf("the guest's answer did not reach the attached console:\n%s", screen.String())
	}
	for !strings.Contains(screen.String(), "pwned-without-token: No such file") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(screen.String(), "pwned-without-token: No such file") {
		t.Errorf("what a connection without the token typed reached the guest:\n%s", screen.String())
	}
	typing.Write([]byte{0x1d}) // Ctrl-]
	select {
	case err := <-attached:
		if err != nil {
			t.Errorf("leaving the console: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Ctrl-] did not leave the console")
	}
	if err := LabConsole(ctx, cfg, "pair", "nobody", in, &screen); err == nil || !strings.Contains(err.Error(), `no guest "nobody"`) {
		t.Errorf("a guest the lab does not have: %v", err)
	}
	// A record whose token is not the running lab's (a lab restarted meanwhile) is refused, plainly.
	os.WriteFile(current, []byte(sockets+"\nnot-the-token\n"), 0o600)
	if err := LabConsole(ctx, cfg, "pair", "a", in, &screen); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a wrong token: %v", err)
	}
	os.WriteFile(current, data, 0o600)
	if _, err := exec.LookPath("tmux"); err == nil {
		if out, err := exec.Command("tmux", "list-windows", "-t", "suml-lab-pair", "-F", "#W").CombinedOutput(); err != nil || strings.Join(strings.Fields(string(out)), " ") != "a b" {
			t.Errorf("tmux windows: %q %v", out, err)
		}
		// b's window runs this binary's labConsole pair b, as mage lab's runs mage's.
		if pane := waitForPane(t, "suml-lab-pair:b", "Ctrl-] leaves the console"); !strings.Contains(pane, "Ctrl-] leaves the console") {
			t.Errorf("b's tmux window is not attached to its console:\n%s", pane)
		}
	} else if os.Getenv("CI") != "" {
		t.Error("tmux is not installed: CI installs it for this test (.ci/run)")
	}

	// mage gives a target 5 seconds after Ctrl-C, then exits without running what is deferred.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("mage lab after Ctrl-C: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("mage lab did not stop within the 5 s mage waits after Ctrl-C")
		<-done
	}
	if _, err := os.Stat(current); !os.IsNotExist(err) {
		t.Errorf("the running lab's record is left: %v", err)
	}
	if _, err := os.Stat(sockets); !os.IsNotExist(err) {
		t.Errorf("the socket folder is left: %v", err)
	}
	if left := labLeftovers(cfg, nil); len(left) > 0 {
		t.Errorf("left after Ctrl-C: %v", left)
	}
	if _, err := exec.LookPath("tmux"); err == nil {
		if err := exec.Command("tmux", "has-session", "-t", "suml-lab-pair").Run(); err == nil {
			t.Error("the tmux session outlived the lab")
		}
	}
}
