package pipeline

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/lab"
)

// standInLab is a lab of two stand-in guests on one LAN: a's run leaves a file its check reads, and
// b's check must fail.
const standInLab = `
[[lan]]
name = "lan"

[[guest]]
name = "a"
interface = [{ lan = "lan", address = "10.9.0.1/24" }]
run = "echo configured > /tmp/configured"

[[guest]]
name = "b"
recipe = "void-minimal"
interface = [{ lan = "lan", address = "10.9.0.2/24" }]
run = ["true", "echo more"]

[[check]]
name = "a ran its commands"
guest = "a"
run = "cat /tmp/configured"
want = "%s"

[[check]]
name = "b refuses"
guest = "b"
run = "false"
fail = true
`

func standInLabConfig(t *testing.T, want string) map[string]string {
	env := guestDist(t, "6.12.117")
	labs := t.TempDir()
	os.WriteFile(filepath.Join(labs, "pair.toml"), []byte(strings.Replace(standInLab, "%s", want, 1)), 0o644)
	env["SUML_LABS"] = labs
	return env
}

// TestLabTestOnStandIns: labTest's orchestration with stand-in guests: each configured and its run
// commands run, the checks judged, a failed check failing the lab with the run folder named.
func TestLabTestOnStandIns(t *testing.T) {
	privateTemp(t)
	cfg := loadConfig(t, standInLabConfig(t, "configured"), nil)
	var out bytes.Buffer
	report, err := LabTest(context.Background(), cfg, "pair", &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(report.Checks) != 2 || !report.Checks[0].OK || !report.Checks[1].OK || report.Dir == "" {
		t.Errorf("report %+v", report)
	}

	cfg = loadConfig(t, standInLabConfig(t, "something else"), nil)
	if _, err := LabTest(context.Background(), cfg, "pair", &out); err == nil || !strings.Contains(err.Error(), "a ran its commands") || !strings.Contains(err.Error(), "consoles and captures") {
		t.Errorf("a failing check: %v", err)
	}
}

// TestLabOnStandIns: lab says what runs, records where its consoles are for labConsole while it
// runs, replaces the tmux session a killed lab of its name left, and stops when its context ends,
// removing that record and its session.
func TestLabOnStandIns(t *testing.T) {
	privateTemp(t) // its own tmux server and socket folders
	_, tmuxErr := exec.LookPath("tmux")
	if tmuxErr == nil {
		// What a lab killed with SIGKILL leaves: a session naming a socket folder that is gone.
		stale := exec.Command("tmux", "new-session", "-d", "-s", "suml-lab-pair", "-n", "stale", "-e", "SUML_LAB_SOCKETS=/nonexistent", "sleep 600")
		if out, err := stale.CombinedOutput(); err != nil {
			t.Fatalf("tmux: %v\n%s", err, out)
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("tmux is not installed: CI installs it for this test (.ci/run)")
	}
	cfg := loadConfig(t, standInLabConfig(t, "configured"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	// The windows run a copy of this test binary, told to run no test.
	go func() { done <- Lab(ctx, cfg, "pair", []string{"-test.run=^$"}, &out) }()
	current := lab.RecordFile(runFolder(cfg), "pair")
	// Up, and its tmux session opened (or not: no tmux).
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "tmux"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the lab did not come up:\n%s", out.String())
		}
	}
	if _, err := os.Stat(current); err != nil {
		t.Errorf("no record of the running lab for labConsole: %v", err)
	}
	if err := LabConsole(ctx, cfg, "pair", "nosuch", os.Stdin, &out); err == nil || !strings.Contains(err.Error(), `no guest "nosuch"`) {
		t.Errorf("labConsole to a guest the lab has not: %v", err)
	}
	if tmuxErr == nil {
		if windows, err := exec.Command("tmux", "list-windows", "-t", "suml-lab-pair", "-F", "#W").Output(); err != nil || strings.Join(strings.Fields(string(windows)), " ") != "a b" {
			t.Errorf("the lab's tmux windows: %q %v, want a and b in place of the stale session's\n%s", windows, err, out.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"a ", "10.9.0.1/24 on lan", "console: ", "lab pair: stopping"} {
		if !strings.Contains(s, want) {
			t.Errorf("lab's output lacks %q:\n%s", want, s)
		}
	}
	if _, err := os.Stat(current); err == nil {
		t.Error("the running lab's record outlived it")
	}
	if tmuxErr == nil && exec.Command("tmux", "has-session", "-t", "suml-lab-pair").Run() == nil {
		t.Error("the lab's tmux session outlived it")
	}
}
