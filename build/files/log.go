package files

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// RotatingLog appends to Path (not through a link, and only to a regular file), moving it to Path.1
// once it would pass Max bytes (DefaultLogMax when 0): a log a guest fills keeps two bounds of its
// latest output at most. Writes may come from several goroutines; none after Close.
type RotatingLog struct {
	Path   string
	Max    int64
	mu     sync.Mutex
	f      *os.File
	size   int64
	closed bool
}

// DefaultLogMax is a RotatingLog's bound when it has none.
const DefaultLogMax = 1 << 20

func (l *RotatingLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, os.ErrClosed
	}
	if l.f != nil && l.size+int64(len(p)) > max(l.Max, 0) && l.size > 0 {
		l.f.Close()
		l.f = nil
		if err := os.Rename(l.Path, l.Path+".1"); err != nil {
			os.Remove(l.Path) // rather than a log that grows past its bound
		}
	}
	if l.f == nil {
		if err := l.open(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// open opens Path for appending. O_NONBLOCK: a FIFO put in its place must not hold the writer up
// (the guest's console waits on it); it is refused as not a regular file.
func (l *RotatingLog) open() error {
	if l.Max == 0 {
		l.Max = DefaultLogMax
	}
	f, err := os.OpenFile(l.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file (%s): remove it", l.Path, fi.Mode().Type())
	}
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, fi.Size()
	return nil
}

func (l *RotatingLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
