package files

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// OwnerFile marks a PrivateDir whose run may still be using it: that run holds a lock on it.
const OwnerFile = ".suml-owner"

// PrivateDir is a folder one run of simple-uml makes for its own use (a boot's runtime files, a
// lab's sockets, a throwaway COW file), which nothing should find once the run ends. Remove removes
// it. A run killed before it could (kill -9, a crash) leaves it behind with its owner file unlocked,
// as a lock dies with its process, in whatever namespace: the next NewPrivateDir in the same parent
// folder removes it then.
type PrivateDir struct {
	Path  string
	owner *os.File
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
	owner, err := lockOwner(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &PrivateDir{Path: dir, owner: owner}, nil
}

// lockOwner makes dir's owner file and holds a shared lock on it. The file is locked under another
// name, then renamed: a sweep never sees an owner file that is not locked yet.
func lockOwner(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, OwnerFile+".new-")
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, OwnerFile)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Remove removes the folder and everything in it. It is safe to call more than once.
func (p *PrivateDir) Remove() error {
	if p.owner == nil {
		return nil
	}
	err := RemoveAllWritable(p.Path)
	p.owner.Close()
	p.owner = nil
	return err
}

// Keep leaves the folder for the user to read (a lab's console logs and captures): no sweep removes
// it any more.
func (p *PrivateDir) Keep() {
	if p.owner == nil {
		return
	}
	os.Remove(filepath.Join(p.Path, OwnerFile))
	p.owner.Close()
	p.owner = nil
}

// SweepPrivateDirs removes the folders in parent whose owner file nobody holds locked: their runs
// have ended without removing them. A folder without an owner file (kept, or not simple-uml's), one
// the user may not enter, and one whose owner file is a link or not a regular file, are left alone.
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
		if orphaned(dir) {
			if left != nil {
				left(dir)
			}
			RemoveAllWritable(dir)
		}
	}
}

// orphaned says whether dir's owner file exists and no process holds its lock.
func orphaned(dir string) bool {
	fd, err := unix.Open(filepath.Join(dir, OwnerFile), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Getuid() {
		return false
	}
	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	return err == nil
}

// PrivateDirsInUse lists the folders in parent named prefix... whose run is still using them.
func PrivateDirsInUse(parent, prefix string) []string {
	entries, _ := os.ReadDir(parent)
	var out []string
	for _, e := range entries {
		dir := filepath.Join(parent, e.Name())
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) && Exists(filepath.Join(dir, OwnerFile)) && !orphaned(dir) {
			out = append(out, dir)
		}
	}
	return out
}
