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

// The child side: hold the lock named by SUML_LOCK_CHILD until stdin closes, or until killed.
func TestMain(m *testing.M) {
	if path := os.Getenv("SUML_LOCK_CHILD"); path != "" {
		l, err := Acquire(context.Background(), path, "test holder", os.Stderr)
		if err != nil {
			os.Exit(2)
		}
		os.Stdout.WriteString("locked\n")
		io.Copy(io.Discard, os.Stdin)
		l.Release()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdInChild starts a process that holds the lock; it returns once the lock is held.
func holdInChild(t *testing.T, path string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SUML_LOCK_CHILD="+path)
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
