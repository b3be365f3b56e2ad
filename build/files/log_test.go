package files

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A console log passes its bound by moving to .1, the one before going: two bounds at most.
func TestRotatingLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	l := &RotatingLog{Path: path, Max: 100}
	for i := 0; i < 50; i++ {
		l.Write([]byte(strings.Repeat("x", 9) + "\n"))
	}
	l.Write([]byte("last\n"))
	l.Close()
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if len(cur) > 100 || len(old) > 100 || !strings.HasSuffix(string(cur), "last\n") || len(old) == 0 {
		t.Errorf("console.log %d bytes (%q), .1 %d bytes", len(cur), cur, len(old))
	}
}

// TestRotatingLogRefuses: a FIFO in the log's place is refused at once (it held the writer, and
// the guest's console, up); a write after Close is refused rather than opening the file again; no
// bound means DefaultLogMax, not a rotation at every write.
func TestRotatingLogRefuses(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := (&RotatingLog{Path: fifo}).Write([]byte("x")); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a write to a FIFO succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a write to a FIFO blocked")
	}
	l := &RotatingLog{Path: filepath.Join(dir, "console.log")}
	for i := 0; i < 3; i++ {
		l.Write([]byte("line\n"))
	}
	l.Close()
	if _, err := l.Write([]byte("after\n")); err == nil {
		t.Error("a write after Close succeeded")
	}
	if data, _ := os.ReadFile(l.Path); string(data) != "line\nline\nline\n" {
		t.Errorf("the log holds %q", data)
	}
	if _, err := os.Stat(l.Path + ".1"); err == nil {
		t.Error("a log without a bound rotated")
	}
}
