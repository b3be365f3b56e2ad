// Package lock serialises runs that write one folder: an exclusive flock(2) on a file in it, which the
// kernel releases when the holder exits however it exits, so a killed run never leaves a stale lock.
// A run that has to wait says once who it waits for.
package lock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Lock is a held lock; Release gives it back.
type Lock struct {
	path string
}

// A process holds each lock once, however many of its stages take it (rootfs builds the kernel it
// needs, under the same locks): flock would make a second open file of the same process wait for the
// first.
var (
	mu   sync.Mutex
	held = map[string]*holder{}
)

type holder struct {
	f     *os.File
	count int
}

// PollInterval is how often a waiting run tries again.
var PollInterval = 200 * time.Millisecond

// Acquire takes the lock file path (created if missing), waiting while another process holds it; what
// says what the holder is doing, for whoever waits. The wait ends with ctx.
func Acquire(ctx context.Context, path, what string, w io.Writer) (*Lock, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	if h, ok := held[path]; ok {
		h.count++
		mu.Unlock()
		return &Lock{path: path}, nil
	}
	// The wait below holds no mutex: a Release of another lock must go on meanwhile, or two
	// processes each holding one lock and waiting for the other's would never go on.
	mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// O_NOFOLLOW: a link planted in place of the lock file must not make us write elsewhere.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	waited := false
	start := time.Now()
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waited {
			waited = true
			fmt.Fprintf(w, "waiting for %s to finish (lock %s)...\n", holderOf(f), path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(PollInterval):
		}
	}
	if waited {
		fmt.Fprintf(w, "got lock %s after %s\n", path, time.Since(start).Round(time.Millisecond))
	}
	// Say who holds it, for the next one to wait.
	f.Truncate(0)
	f.WriteAt([]byte(fmt.Sprintf("pid %d: %s\n", os.Getpid(), oneLine(what))), 0)
	mu.Lock()
	defer mu.Unlock()
	// flock serialises this process's own descriptors too, so no other goroutine of it holds the
	// lock now.
	held[path] = &holder{f: f, count: 1}
	return &Lock{path: path}, nil
}

// Release gives the lock back; the last release of a process's lock unlocks the file.
func (l *Lock) Release() {
	if l == nil {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	h, ok := held[l.path]
	if !ok {
		return
	}
	if h.count--; h.count > 0 {
		return
	}
	delete(held, l.path)
	h.f.Close() // closing the last descriptor drops the flock
}

// Held says whether a process holds the lock at path, for a run that only asks (whether an
// instance's supervisor runs): it takes a shared lock for a moment and gives it back, never making
// the file.
func Held(path string) bool {
	// O_NONBLOCK: a FIFO planted under the name would block the open (and every readiness probe).
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return false
	}
	return errors.Is(unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB), unix.EWOULDBLOCK)
}

func holderOf(f *os.File) string {
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, 0)
	if s := strings.TrimSpace(string(buf[:n])); s != "" {
		return "another run (" + s + ")"
	}
	return "another run"
}

// oneLine keeps what a holder says to one line of printable text: it may quote a URL from an index.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
