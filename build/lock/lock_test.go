package lock

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The child side: hold the lock named by SUML_LOCK_CHILD until stdin closes, or until killed; with
// SUML_LOCK_CHILD_THEN, take that lock too (waiting for it) and then release both.
func TestMain(m *testing.M) {
	if path := os.Getenv("SUML_LOCK_CHILD"); path != "" {
		l, err := Acquire(context.Background(), path, "test holder", os.Stderr)
		if err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString("locked\n")
		if then := os.Getenv("SUML_LOCK_CHILD_THEN"); then != "" {
			l2, err := Acquire(context.Background(), then, "test holder, second lock", os.Stderr)
			if err != nil {
				os.Exit(3)
			}
			l2.Release()
			l.Release()
			os.Exit(0)
		}
		io.Copy(io.Discard, os.Stdin)
		l.Release()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdInChild starts a process that holds the lock; it returns once the lock is held.
func holdInChild(t *testing.T, path string, env ...string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "SUML_LOCK_CHILD="+path), env...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		t.Fatalf("child: %q", line)
	}
	return cmd, stdin
}

func TestLock(t *testing.T) {
	PollInterval = 10 * time.Millisecond
	tests := []struct {
		name string
		end  func(cmd *exec.Cmd, stdin io.WriteCloser) // how the holder lets go
	}{
		{"holder finishes", func(_ *exec.Cmd, stdin io.WriteCloser) { stdin.Close() }},
		{"holder is killed", func(cmd *exec.Cmd, _ io.WriteCloser) { cmd.Process.Kill() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cache", "lock")
			cmd, stdin := holdInChild(t, path)
			var out bytes.Buffer
			done := make(chan error, 1)
			go func() {
				l, err := Acquire(context.Background(), path, "waiter", &out)
				if err == nil {
					l.Release()
				}
				done <- err
			}()
			select {
			case err := <-done:
				t.Fatalf("got the lock while another process held it (%v)", err)
			case <-time.After(300 * time.Millisecond):
			}
			tt.end(cmd, stdin)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the lock was not released")
			}
			if !strings.Contains(out.String(), "waiting for another run (pid ") || !strings.Contains(out.String(), "test holder") {
				t.Errorf("message: %q", out.String())
			}
		})
	}
}

func TestLockWaitEndsWithContext(t *testing.T) {
	PollInterval = 10 * time.Millisecond
	path := filepath.Join(t.TempDir(), "lock")
	holdInChild(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, path, "waiter", io.Discard); err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Fatalf("err = %v", err)
	}
}

// One process takes a lock as often as its stages ask; the file is unlocked after the last release.
func TestLockReentrant(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	a, err := Acquire(context.Background(), path, "outer", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Acquire(context.Background(), path, "inner", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	if _, ok := held[path]; !ok {
		t.Fatal("inner release dropped the outer hold")
	}
	a.Release()
	if _, ok := held[path]; ok {
		t.Fatal("still held after the last release")
	}
	// Another process can take it now.
	_, stdin := holdInChild(t, path)
	stdin.Close()
}

// TestLockNoDeadlockAcrossProcesses: this process holds lock a and waits for b; another holds b and
// waits for a. Releasing a must not wait for the Acquire of b (it did: both held the package mutex),
// or neither process ever goes on.
func TestLockNoDeadlockAcrossProcesses(t *testing.T) {
	PollInterval = 10 * time.Millisecond
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.lock"), filepath.Join(dir, "b.lock")
	la, err := Acquire(context.Background(), a, "test", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cmd, _ := holdInChild(t, b, "SUML_LOCK_CHILD_THEN="+a)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		lb, err := Acquire(ctx, b, "test", io.Discard)
		if err == nil {
			lb.Release()
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond) // the Acquire of b is waiting now
	released := make(chan struct{})
	go func() { la.Release(); close(released) }()
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("releasing a waited for the Acquire of b: the two processes deadlock")
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("the other process: %v", err)
	}
}

// Held: no lock file, or one nobody holds, is not held; one another process holds is, until it lets go.
func TestHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	if Held(path) || fileExists(path) {
		t.Fatal("a missing lock is held, or asking made it")
	}
	cmd, stdin := holdInChild(t, path)
	if !Held(path) {
		t.Error("a lock another process holds is not held")
	}
	stdin.Close()
	cmd.Wait()
	if Held(path) {
		t.Error("a released lock is held")
	}
}

func fileExists(path string) bool { _, err := os.Stat(path); return err == nil }
