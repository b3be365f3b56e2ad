// Package source turns a verified kernel tarball into a patched source tree: a streaming, parallel,
// safe tar.xz extractor, the top-level Makefile's version, and a quilt-style patch series applied
// strictly (no fuzz, no offsets).
//
// Every file operation inside a tree goes through an os.Root of it, so no link that an archive or a
// patch plants can make a write, a link or a read land outside.
//
// Limits: the archive must hold one top-level directory (as kernel.org's and Debian's do); device
// nodes, FIFOs and links that leave the tree are refused rather than skipped.
package source

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simple-uml/simple-uml/build/confine"
	"github.com/simple-uml/simple-uml/build/ui"
	"github.com/simple-uml/simple-uml/build/untar"
)

// UnsafeEntryError is an archive entry that would write outside the tree or through a link.
type UnsafeEntryError struct {
	Name   string
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("refusing archive entry %q: %s; the archive is malformed or hostile, nothing was unpacked", e.Name, e.Reason)
}

// Stats describes what Unpack wrote.
type Stats struct {
	TopDir string // the archive's top-level directory, stripped in dest
	Files  int
	Bytes  int64
}

// Limits against archives that would fill the disk: Linux's tree has no file near 1 GiB and unpacks to
// about 1.5 GiB.
const (
	maxFileSize  = 1 << 30
	maxTotalSize = 16 << 30
)

// maxInlineFile is the largest file handed to a writer goroutine in memory; larger ones are written
// by the reading goroutine itself to bound memory.
const maxInlineFile = 8 << 20

// Unpack extracts archive (tar, or tar.xz recognised by its content) into dest, which must not exist. Entries are
// written under a temporary sibling of dest that is renamed to dest at the end, so dest appears
// complete or not at all. Modification times are kept (make relies on them).
func Unpack(ctx context.Context, archive, dest string) (Stats, error) {
	return UnpackWith(ctx, archive, dest, DecoderAuto)
}

// UnpackWith is Unpack with a choice of xz decoder.
func UnpackWith(ctx context.Context, archive, dest string, d Decoder) (Stats, error) {
	if _, err := os.Lstat(dest); err == nil {
		return Stats{}, fmt.Errorf("unpack %s: %s already exists", archive, dest)
	}
	f, err := os.Open(archive)
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Stats{}, err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return Stats{}, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".unpack-")
	if err != nil {
		return Stats{}, err
	}
	progress := ui.NewProgress("unpack " + filepath.Base(archive))
	counted := &countingReader{r: f}
	stats, err := extract(ctx, counted, d, tmp, func() { progress.Update(counted.n, fi.Size()) })
	progress.Done()
	if err != nil {
		_ = os.RemoveAll(tmp)
		return Stats{}, fmt.Errorf("unpack %s: %w", archive, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		_ = os.RemoveAll(tmp)
		return Stats{}, fmt.Errorf("unpack %s: %w", archive, err)
	}
	return stats, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type fileJob struct {
	path  string // relative to the root, slash-separated
	mode  os.FileMode
	mtime time.Time
	data  []byte
}

// extract reads the tar stream on this goroutine (decoding is the bottleneck) and hands file contents
// to writer goroutines, so that decoding and disk writes overlap.
func extract(ctx context.Context, r io.Reader, d Decoder, dir string, tick func()) (_ Stats, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Stats{}, err
	}
	defer root.Close()
	stream, finish, err := tarStream(ctx, r, d)
	if err != nil {
		return Stats{}, err
	}
	defer func() {
		if ferr := finish(err != nil); err == nil {
			err = ferr
		}
	}()
	tr := tar.NewReader(stream)

	jobs := make(chan fileJob, 256)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	var failed atomic.Bool // lets the reader stop early when a write failed (a full disk, say)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err })
		failed.Store(true)
	}
	workers := max(2, runtime.NumCPU())
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := confine.WriteNew(root, j.path, bytes.NewReader(j.data), j.mode, j.mtime); err != nil {
					fail(err)
				}
			}
		}()
	}

	x := extraction{root: root, links: map[string]string{}, dirs: map[string]bool{".": true}, failed: &failed}
	err = x.run(ctx, tr, jobs, tick)
	close(jobs)
	wg.Wait()
	if err == nil {
		err = firstErr
	}
	if err == nil {
		err = x.finish()
	}
	return x.stats, err
}

type hardlink struct{ name, target string }

type extraction struct {
	root      *os.Root
	top       string
	stats     Stats
	links     map[string]string // symlinks created, by cleaned relative name: their targets
	dirs      map[string]bool   // directories known to exist
	hardlinks []hardlink
	dirTimes  []fileJob
	failed    *atomic.Bool // set by a writer goroutine that failed
}

func (x *extraction) run(ctx context.Context, tr *tar.Reader, jobs chan<- fileJob, tick func()) error {
	var entries untar.Counter
	for n := 0; ; n++ {
		if n%512 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if x.failed.Load() {
				return nil // the writer's error is reported
			}
			tick()
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if x.top == "" {
				return errors.New("archive is empty")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		if err := entries.Next("the archive"); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // git archive's commit id; no file
		}
		rel, err := x.relName(hdr.Name)
		if err != nil {
			return err
		}
		if err := checkSize(hdr, x.stats.Bytes); err != nil {
			return err
		}
		if rel == "." {
			continue
		}
		if err := x.checkParents(hdr.Name, rel); err != nil {
			return err
		}
		if err := x.entry(hdr, rel, tr, jobs); err != nil {
			return err
		}
	}
}

// entry makes one checked entry of the archive at rel, through the tree's root: a folder, a file
// (small ones go to the writers as jobs), a symbolic link whose target stays in the tree, or a hard
// link, made once every file is there. Any other type is refused.
func (x *extraction) entry(hdr *tar.Header, rel string, tr *tar.Reader, jobs chan<- fileJob) error {
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := x.root.MkdirAll(rel, 0o755); err != nil {
			return err
		}
		x.dirs[rel] = true
		x.dirTimes = append(x.dirTimes, fileJob{path: rel, mtime: hdr.ModTime})
	case tar.TypeReg, tar.TypeRegA:
		if err := x.mkParent(rel); err != nil {
			return err
		}
		mode := os.FileMode(hdr.Mode) & 0o777
		if hdr.Size > maxInlineFile {
			if err := confine.WriteNew(x.root, rel, tr, mode, hdr.ModTime); err != nil {
				return err
			}
		} else {
			data := make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, data); err != nil {
				return fmt.Errorf("read %s: %w", hdr.Name, err)
			}
			jobs <- fileJob{path: rel, mode: mode, mtime: hdr.ModTime, data: data}
		}
		x.stats.Files++
		x.stats.Bytes += hdr.Size
	case tar.TypeSymlink:
		if err := x.checkLinkTarget(hdr.Name, path.Dir(rel), hdr.Linkname); err != nil {
			return err
		}
		if err := x.mkParent(rel); err != nil {
			return err
		}
		if err := x.root.Symlink(hdr.Linkname, rel); err != nil {
			return err
		}
		x.links[rel] = hdr.Linkname
	case tar.TypeLink:
		target, err := x.relName(hdr.Linkname)
		if err != nil {
			return err
		}
		if err := x.mkParent(rel); err != nil {
			return err
		}
		x.hardlinks = append(x.hardlinks, hardlink{name: rel, target: target})
	default:
		return &UnsafeEntryError{hdr.Name, fmt.Sprintf("entry type %q is not allowed in a source tree", hdr.Typeflag)}
	}
	return nil
}

// checkSize refuses sparse entries (their holes cost no input, so a small archive could expand without
// bound) and sizes past the limits.
func checkSize(hdr *tar.Header, total int64) error {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return &UnsafeEntryError{hdr.Name, "sparse files are not allowed in a source tree"}
		}
	}
	if hdr.Typeflag == tar.TypeGNUSparse {
		return &UnsafeEntryError{hdr.Name, "sparse files are not allowed in a source tree"}
	}
	if hdr.Size < 0 || hdr.Size > maxFileSize || total+hdr.Size > maxTotalSize {
		return &UnsafeEntryError{hdr.Name, fmt.Sprintf("size %d is past the limits (%d per file, %d in all)", hdr.Size, maxFileSize, maxTotalSize)}
	}
	return nil
}

// relName strips the single top-level directory and rejects names that leave the tree.
func (x *extraction) relName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", &UnsafeEntryError{name, "absolute path"}
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", &UnsafeEntryError{name, "path contains .."}
		}
	}
	clean := path.Clean(name)
	top, rest, _ := strings.Cut(clean, "/")
	if x.top == "" {
		x.top = top
		x.stats.TopDir = top
	} else if top != x.top {
		return "", &UnsafeEntryError{name, fmt.Sprintf("outside the archive's top-level directory %q", x.top)}
	}
	if rest == "" {
		return ".", nil
	}
	return rest, nil
}

// checkParents refuses an entry whose path goes through a symlink made by an earlier entry: writing
// through it could land anywhere.
func (x *extraction) checkParents(name, rel string) error {
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		if _, ok := x.links[dir]; ok {
			return &UnsafeEntryError{name, fmt.Sprintf("its parent %s is a symbolic link", dir)}
		}
	}
	if _, ok := x.links[rel]; ok {
		return &UnsafeEntryError{name, "it would replace a symbolic link"}
	}
	return nil
}

// checkLinkTarget refuses symlinks that point outside the tree.
func (x *extraction) checkLinkTarget(name, dir, target string) error {
	if target == "" || strings.HasPrefix(target, "/") {
		return &UnsafeEntryError{name, fmt.Sprintf("symbolic link to absolute path %q", target)}
	}
	joined := path.Join(dir, target)
	if joined == ".." || strings.HasPrefix(joined, "../") {
		return &UnsafeEntryError{name, fmt.Sprintf("symbolic link %q leaves the tree", target)}
	}
	return nil
}

func (x *extraction) mkParent(rel string) error {
	dir := path.Dir(rel)
	if x.dirs[dir] {
		return nil
	}
	if err := x.root.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	x.dirs[dir] = true
	return nil
}

// finish checks every symlink against the whole tree (an earlier entry may point through a later
// one), makes hard links once every file exists, then sets directory times (writing files changed
// them). Checks made here do not depend on the order of the archive's entries.
func (x *extraction) finish() error {
	for _, rel := range slices.Sorted(maps.Keys(x.links)) {
		if err := x.checkResolves(rel); err != nil {
			return err
		}
	}
	for _, l := range x.hardlinks {
		if _, ok := x.links[l.target]; ok {
			return &UnsafeEntryError{l.name, "hard link to a symbolic link"}
		}
		if fi, err := x.root.Lstat(l.target); err != nil || !fi.Mode().IsRegular() {
			return &UnsafeEntryError{l.name, fmt.Sprintf("hard link to %s, which is not a regular file of the tree", l.target)}
		}
		if err := x.root.Link(l.target, l.name); err != nil {
			return fmt.Errorf("hard link %s: %w", l.name, err)
		}
	}
	for i := len(x.dirTimes) - 1; i >= 0; i-- {
		d := x.dirTimes[i]
		_ = x.root.Chtimes(d.path, d.mtime, d.mtime)
	}
	return nil
}

// checkResolves follows the symlink rel, and every symlink its target goes through, as the kernel
// would, and refuses it when it leaves the tree at any step: a chain of links that are each harmless
// alone (a -> b/.., b -> ..) can still climb out.
func (x *extraction) checkResolves(rel string) error {
	cur := strings.Split(path.Dir(rel), "/")
	if cur[0] == "." {
		cur = nil
	}
	parts := strings.Split(x.links[rel], "/")
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return &UnsafeEntryError{x.top + "/" + rel, fmt.Sprintf("symbolic link %q leaves the tree", x.links[rel])}
			}
			cur = cur[:len(cur)-1]
			continue
		}
		next := strings.Join(append(cur, part), "/")
		target, isLink := x.links[next]
		if !isLink {
			cur = append(cur, part)
			continue
		}
		if hops++; hops > 40 {
			return &UnsafeEntryError{x.top + "/" + rel, "too many levels of symbolic links"}
		}
		if strings.HasPrefix(target, "/") {
			return &UnsafeEntryError{x.top + "/" + rel, fmt.Sprintf("goes through %s, a symbolic link to an absolute path", next)}
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return nil
}
