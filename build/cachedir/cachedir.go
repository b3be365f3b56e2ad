// Package cachedir shows what simple-uml's cache holds and empties it. Everything in the cache can be
// made again (downloads are fetched and verified again, trees unpacked, kernels rebuilt): cleaning
// it costs time, never results.
package cachedir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/ui"
)

// LockName is the cache's lock file, which Clean leaves: runs of other processes may be waiting on it.
const LockName = "lock"

// folders says what each folder the stages make in the cache holds.
var folders = map[string]string{
	"downloads": "verified downloads by sha256: kernel tarballs, signatures, keys, xbps packages",
	"trees":     "unpacked, patched kernel source trees",
	"build":     "kernel build folders (O=) with their objects, for incremental builds",
	"rootfs":    "root filesystem work folders and configure-boot logs",
	"run":       "what running guests and labs use: copy-on-write files, sockets, console logs",
	"bisect":    "the state of `mage bisect` runs, to resume them",
	"verified":  "digests read from signed checksum lists and of local tarballs",
	"repro":     "the two builds `mage repro` compares",
}

// Entry is one thing in the cache and the disk space it takes.
type Entry struct {
	Name  string
	What  string // empty for a folder no stage makes
	Bytes int64  // allocated on disk: sparse images count for what they hold
}

// Usage lists what dir holds, by name, with the space each takes; a missing cache holds nothing.
func Usage(dir string) ([]Entry, error) {
	items, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, it := range items {
		if it.Name() == LockName {
			continue
		}
		size, err := diskUsage(filepath.Join(dir, it.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Name: it.Name(), What: folders[it.Name()], Bytes: size})
	}
	return out, nil
}

// diskUsage adds up the blocks allocated to everything under path, following no link.
func diskUsage(path string) (int64, error) {
	var total int64
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				return nil // a read-only folder a guest's image left: counted as far as it can be read
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil // gone meanwhile
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	return total, err
}

// Users are the processes of this user that have a file or their working folder under dir: guests
// whose copy-on-write file is there, a build working in it. Processes of other users cannot be seen,
// and do not need to be: they cannot write this user's cache.
func Users(dir string) ([]int, error) {
	// /proc names files by their real paths: a cache reached through a link is matched as the kernel
	// sees it.
	dir, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if usesDir(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func usesDir(pid int, dir string) bool {
	under := func(link string) bool {
		target, err := os.Readlink(link)
		return err == nil && (target == dir || strings.HasPrefix(target, dir+"/"))
	}
	base := filepath.Join("/proc", strconv.Itoa(pid))
	if under(filepath.Join(base, "cwd")) {
		return true
	}
	fds, _ := os.ReadDir(filepath.Join(base, "fd")) // another user's, or gone: not ours to see
	return slices.ContainsFunc(fds, func(fd os.DirEntry) bool { return under(filepath.Join(base, "fd", fd.Name())) })
}

// Clean removes what simple-uml's stages made in dir (the folders Usage describes; anything else is
// named and left, in case paths.cache names a folder other programs use too), and keeps the
// downloads folder when keepDownloads. The caller holds the cache's lock, so no run of simple-uml
// writes it; a process that still uses a file in it (a guest booted from it) makes Clean refuse,
// naming it, before anything is removed.
func Clean(ctx context.Context, dir, downloads string, keepDownloads bool, w io.Writer) error {
	pids, err := Users(dir)
	if err != nil {
		return err
	}
	if len(pids) > 0 {
		return fmt.Errorf("the cache %s is in use by %s: stop it first (a guest or lab started by `go tool mage boot`/`lab`)", dir, describe(pids))
	}
	entries, err := Usage(dir)
	if err != nil {
		return err
	}
	var freed int64
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(dir, e.Name)
		if keepDownloads && (e.Name == "downloads" || path == downloads) {
			continue
		}
		if e.What == "" {
			fmt.Fprintf(w, "left %s: simple-uml does not make it\n", path)
			continue
		}
		if err := files.RemoveAllWritable(path); err != nil {
			return fmt.Errorf("clean the cache: %w", err)
		}
		freed += e.Bytes
	}
	fmt.Fprintf(w, "cache %s cleaned: %s freed%s\n", dir, ui.Size(freed), map[bool]string{true: " (downloads kept)"}[keepDownloads])
	return nil
}

// describe names processes by pid and command.
func describe(pids []int) string {
	var parts []string
	for _, pid := range pids {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		parts = append(parts, fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(string(comm))))
	}
	return strings.Join(parts, ", ")
}
