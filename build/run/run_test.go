package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
	switch os.Getenv("SUML_RUN_CHILD") {
	case "1":
		Run(context.Background(), Cmd{Args: []string{"sleep", "31"}, Echo: io.Discard})
		os.Exit(0)
	case "self":
		// Remove the file this program was started from, then run Self again, as a rebuild would.
		exe, _ := os.Executable()
		os.Remove(exe)
		err := Run(context.Background(), Cmd{Args: []string{Self(), "-test.run=^$"}, Env: []string{"SUML_RUN_CHILD=again"}, Stdout: os.Stdout, Echo: io.Discard})
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		os.Exit(0)
	case "tied":
		os.Exit(startTiedAndChurn())
	case "again":
		fmt.Println("ran again as", os.Getenv("SUML_RUN_CHILD"))
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

// Self runs this program again even when its file was removed (or rebuilt) since it started.
func TestSelfOutlivesItsFile(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "program")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SUML_RUN_CHILD=self")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ran again as again" {
		t.Fatalf("running Self after its file went: %v\n%s", err, out)
	}
	if _, err := os.Stat(exe); !os.IsNotExist(err) {
		t.Fatalf("the program's file is still there (%v): the test proves nothing", err)
	}
}

// TestSelfInSharesOneCopy: two folders get the same file (one inode, so one copy in memory for
// every supervisor), and a copy no folder links any more is removed.
func TestSelfInSharesOneCopy(t *testing.T) {
	shared, a, b := t.TempDir(), t.TempDir(), t.TempDir()
	stale := filepath.Join(shared, "0000")
	os.WriteFile(stale, []byte("an older program"), 0o500)
	linked := filepath.Join(shared, "1111")
	os.WriteFile(linked, []byte("a program an instance still links"), 0o500)
	os.Link(linked, filepath.Join(b, "other"))
	pa, err := SelfIn(a, shared)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := SelfIn(b, shared)
	if err != nil {
		t.Fatal(err)
	}
	fa, errA := os.Stat(pa)
	fb, errB := os.Stat(pb)
	if errA != nil || errB != nil || !os.SameFile(fa, fb) {
		t.Fatalf("%s and %s are not one file: %v %v", pa, pb, errA, errB)
	}
	if self, _ := os.Stat("/proc/self/exe"); fa.Size() != self.Size() {
		t.Errorf("the copy has %d bytes, the program %d", fa.Size(), self.Size())
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the unlinked copy stays: %v", err)
	}
	if _, err := os.Stat(linked); err != nil {
		t.Errorf("a linked copy went: %v", err)
	}
	// Again in a: the link is made anew, not an error.
	if _, err := SelfIn(a, shared); err != nil {
		t.Fatal(err)
	}
}

// TestSelfInAtOnce: ups at the same moment each get the program (one's prune once took the copy
// another had just made and not linked yet).
func TestSelfInAtOnce(t *testing.T) {
	for round := 0; round < 5; round++ {
		shared := t.TempDir()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			dir := t.TempDir()
			wg.Go(func() { _, errs[i] = SelfIn(dir, shared) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}
