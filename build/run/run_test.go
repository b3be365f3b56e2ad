package run

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestCmdline(t *testing.T) {
	tests := []struct {
		env, args []string
		want      string
	}{
		{nil, []string{"make", "-C", "/src", "O=/out", "ARCH=um"}, "make -C /src O=/out ARCH=um"},
		{[]string{"B=2", "A=x y"}, []string{"echo", "it's"}, `A='x y' B=2 echo 'it'\''s'`},
		{nil, []string{"printf", ""}, "printf ''"},
	}
	for _, tt := range tests {
		if got := Cmdline(tt.env, tt.args); got != tt.want {
			t.Errorf("Cmdline = %s, want %s", got, tt.want)
		}
	}
}

func TestRunEchoesAndKeepsTail(t *testing.T) {
	var echo, log bytes.Buffer
	err := Run(context.Background(), Cmd{
		Args: []string{"sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; exit 3"},
		Env:  []string{"X=1"}, Echo: &echo, Log: &log, TailLines: 2,
	})
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want *run.Error", err)
	}
	if len(re.Tail) != 2 || re.Tail[1] != "oops" {
		t.Errorf("tail = %q", re.Tail)
	}
	if !strings.HasPrefix(echo.String(), "$ X=1 sh -c ") {
		t.Errorf("command not echoed: %q", echo.String())
	}
	if !strings.Contains(log.String(), "line 1") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("log %q, err %v", log.String(), err)
	}
}

func TestRunCancelKillsProcessGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The child sleeps in a grandchild; cancelling must stop both.
	err := Run(ctx, Cmd{Args: []string{"sh", "-c", "sleep 30 & wait"}, Echo: &bytes.Buffer{}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("cancel did not stop the command")
	}
	if out, _ := exec.Command("pgrep", "-f", "^sleep 30$").Output(); len(out) > 0 {
		t.Errorf("grandchild survived: pids %s", out)
	}
}

func TestRunMissingProgram(t *testing.T) {
	err := Run(context.Background(), Cmd{Args: []string{"surely-not-a-program"}, Echo: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "mage doctor") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunInteractivePassesFilesThrough(t *testing.T) {
	in, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// The command sees the file itself (not a pipe) on stdout, as a full-screen program needs.
	err = Run(context.Background(), Cmd{Args: []string{"sh", "-c", "readlink /proc/self/fd/1; cat"}, Stdin: in, Stdout: out, Stderr: out, Interactive: true, Echo: &bytes.Buffer{}})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out.Name())
	if strings.TrimSpace(string(got)) != out.Name() {
		t.Errorf("stdout was %q, want the file %s", got, out.Name())
	}
}

// TestMain's child side: run a long command through Run, for the test to kill this process.
func TestMain(m *testing.M) {
	if os.Getenv("SUML_RUN_CHILD") == "1" {
		Run(context.Background(), Cmd{Args: []string{"sleep", "31"}, Echo: io.Discard})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A command outlives no process that ran it, however that process ends: SIGKILL included.
func TestRunDiesWithItsParent(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SUML_RUN_CHILD=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if out, _ := exec.Command("pgrep", "-f", "^sleep 31$").Output(); len(out) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command never started")
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		out, _ := exec.Command("pgrep", "-f", "^sleep 31$").Output()
		if len(out) == 0 {
			return
		}
		if time.Now().After(deadline) {
			exec.Command("pkill", "-f", "^sleep 31$").Run()
			t.Fatalf("the command outlived the killed process: pids %s", out)
		}
	}
}
