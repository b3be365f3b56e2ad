package files

import (
	"os"
	"sync"
	"syscall"
)

// RotatingLog appends to Path (not through a link), moving it to Path.1 once it would pass Max
// bytes: a log a guest fills keeps two bounds of its latest output at most. Writes may come from
// several goroutines.
type RotatingLog struct {
	Path string
	Max  int64
	mu   sync.Mutex
	f    *os.File
	size int64
}

func (l *RotatingLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil && l.size+int64(len(p)) > l.Max {
		l.f.Close()
		l.f = nil
		os.Rename(l.Path, l.Path+".1")
	}
	if l.f == nil {
		f, err := os.OpenFile(l.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return 0, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return 0, err
		}
		l.f, l.size = f, fi.Size()
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

func (l *RotatingLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
