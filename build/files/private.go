package files

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// OwnerFile marks a folder as a PrivateDir, which a sweep may remove once no run holds it.
const OwnerFile = ".suml-owner"

// PrivateDir is a folder one run of simple-uml makes for its own use (a boot's runtime files, a
// lab's sockets, a throwaway COW file), which nothing should find once the run ends. Remove removes
// it. A run killed before it could (kill -9, a crash) leaves it behind, but not its lock on the
// folder, which dies with its process, in whatever namespace: the next NewPrivateDir in the same
// parent folder removes it then. The lock is on the folder itself, not on a file in it: a guest's
// kernel may write in its run folder, but not replace the folder.
type PrivateDir struct {
	Path string
	lock *os.File // the folder, opened and locked
}

// NewPrivateDir removes the private folders dead runs left in parent, then makes one named prefix,
// this process's id and a random part. left, when not nil, is called with each folder before it is
// removed, to end what the dead run left running that uses it.
func NewPrivateDir(parent, prefix string, left func(dir string)) (*PrivateDir, error) {
	if parent == "" {
		parent = os.TempDir()
	}
	SweepPrivateDirs(parent, left)
	dir, err := os.MkdirTemp(parent, prefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, err
	}
	// Locked before it is marked: a sweep never sees a marked folder that is not held.
	lock, err := openDir(dir)
	if err == nil {
		if err = unix.Flock(int(lock.Fd()), unix.LOCK_SH); err != nil {
			lock.Close()
			err = fmt.Errorf("lock %s: %w", dir, err)
		}
	}
	if err == nil {
		if err = os.WriteFile(filepath.Join(dir, OwnerFile), nil, 0o600); err != nil {
			lock.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &PrivateDir{Path: dir, lock: lock}, nil
}

// openDir opens the folder dir itself, not a link to one.
func openDir(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// Remove removes the folder and everything in it. It is safe to call more than once.
func (p *PrivateDir) Remove() error {
	if p.lock == nil {
		return nil
	}
	err := RemoveAllWritable(p.Path)
	p.lock.Close()
	p.lock = nil
	return err
}

// Keep leaves the folder for the user to read (a lab's console logs and captures): no sweep removes
// it any more.
func (p *PrivateDir) Keep() {
	if p.lock == nil {
		return
	}
	os.Remove(filepath.Join(p.Path, OwnerFile))
	p.lock.Close()
	p.lock = nil
}

// SweepPrivateDirs removes the folders in parent that are marked as private folders and that no run
// holds: their runs have ended without removing them. A folder without the mark (kept, or not
// simple-uml's), one of another user or that this user may not open, and a link, are left alone.
// left, when not nil, is called with each folder before it is removed.
func SweepPrivateDirs(parent string, left func(dir string)) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		if lock, ok := orphaned(dir); ok {
			if left != nil {
				left(dir)
			}
			RemoveAllWritable(dir)
			lock.Close()
		}
	}
}

// orphaned says whether dir is a marked private folder of this user that no process holds, and then
// returns it opened and locked, so that no run takes it meanwhile.
func orphaned(dir string) (*os.File, bool) {
	if info, err := os.Lstat(filepath.Join(dir, OwnerFile)); err != nil || !info.Mode().IsRegular() {
		return nil, false
	}
	lock, err := openDir(dir)
	if err != nil {
		return nil, false
	}
	var st unix.Stat_t
	if unix.Fstat(int(lock.Fd()), &st) != nil || int(st.Uid) != os.Getuid() || unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		lock.Close()
		return nil, false
	}
	return lock, true
}

// PrivateDirsInUse lists the folders in parent named prefix... that a run holds.
func PrivateDirsInUse(parent, prefix string) []string {
	entries, _ := os.ReadDir(parent)
	var out []string
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		lock, err := openDir(dir)
		if err != nil {
			continue
		}
		if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
			out = append(out, dir)
		}
		lock.Close()
	}
	return out
}
