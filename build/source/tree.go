package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/simple-uml/simple-uml/build/confine"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
)

// Tree is an unpacked, patched source tree in the cache.
type Tree struct {
	Dir       string
	Version   string
	Timestamp time.Time // the release's time, from the tarball's Makefile
}

// workState is <tree>.work.json: the patches the working tree holds and the files they touched.
type workState struct {
	Patches []string // each applied patch's sha256 and strip level, in order
	Touched []string // tree paths the applied patches create, change or delete
	Version string   // the tree's version with the patches (they may set EXTRAVERSION)
}

// TreeRequest says which source tree Prepare makes.
type TreeRequest struct {
	Trees    string  // the cache's folder of trees
	Tarball  string  // the verified source tarball
	Key      string  // its sha256, which names its trees
	Version  string  // the version the tarball must hold; empty for any
	Series   []Patch // the patches to apply, in order
	BuildDir string  // the O= folder built from the tree: removed when the working tree is made afresh
}

// Prepare returns the source tree for these inputs. A tarball is unpacked once, into
// trees/<tarball>.pristine, which is never written again. The tree kernels build from,
// trees/<tarball>.work, is a hard-link copy of it with the patch series applied; it keeps its path
// when the series changes, and only the files the old or the new series touch are put back and
// patched again, keeping the modification time of any file that comes out the same. So the build
// folder stays valid and make recompiles only what a changed patch reaches.
func Prepare(ctx context.Context, req TreeRequest, w io.Writer) (Tree, error) {
	if len(req.Key) < 16 {
		return Tree{}, fmt.Errorf("source tree of %s: key %q is not a sha256", req.Tarball, req.Key)
	}
	base := filepath.Join(req.Trees, req.Key[:16])
	pristine, err := pristineTree(ctx, req.Tarball, base+".pristine", req.Version, w)
	if err != nil {
		return Tree{}, err
	}
	work, statePath := base+".work", base+".work.json"
	want := make([]string, len(req.Series))
	for i, p := range req.Series {
		want[i] = fmt.Sprintf("%s -p%d", p.SHA256, p.Strip)
	}
	var st workState
	haveWork := files.ReadJSON(statePath, &st) == nil && files.Exists(filepath.Join(work, "Makefile"))
	if haveWork && slices.Equal(st.Patches, want) {
		fmt.Fprintf(w, "using the cached source tree %s\n", work)
		return Tree{Dir: work, Version: st.Version, Timestamp: pristine.Timestamp}, nil
	}
	// The state goes first: a tree caught half-updated is made again from scratch.
	if err := os.Remove(statePath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Tree{}, err
	}
	if !haveWork {
		st = workState{}
		// Which files an earlier series touched is unknown now, and the new tree gives them the
		// tarball's old times: objects built from patched copies would look current. Build afresh.
		if err := os.RemoveAll(req.BuildDir); err != nil {
			return Tree{}, err
		}
		if err := linkTree(pristine.Dir, work); err != nil {
			return Tree{}, fmt.Errorf("make the working source tree: %w", err)
		}
	}
	touched, err := Touched(work, req.Series)
	if err != nil {
		return Tree{}, err
	}
	paths := union(st.Touched, touched)
	if len(req.Series) > 0 {
		fmt.Fprintf(w, "applying %d patch(es) (%d files touched)\n", len(req.Series), len(paths))
	}
	version, err := repatch(pristine.Dir, work, paths, req.Series)
	if err != nil {
		os.RemoveAll(work) // some patches applied, some not: start again from the tarball next time
		return Tree{}, err
	}
	if err := files.WriteJSON(statePath, workState{Patches: want, Touched: touched, Version: version}); err != nil {
		os.RemoveAll(work)
		return Tree{}, err
	}
	return Tree{Dir: work, Version: version, Timestamp: pristine.Timestamp}, nil
}

// repatch puts paths of the work tree back as the pristine tree has them, applies the series, and
// gives each path the time make should see: its old time when its content came out the same, the
// present when it changed. It returns the tree's version with the patches. Paths come from patches
// and the trees from a tarball: both are opened only through os.Root.
func repatch(pristineDir, work string, paths []string, series []Patch) (string, error) {
	workRoot, err := os.OpenRoot(work)
	if err != nil {
		return "", err
	}
	defer workRoot.Close()
	pristineRoot, err := os.OpenRoot(pristineDir)
	if err != nil {
		return "", err
	}
	defer pristineRoot.Close()
	before := map[string]fileState{}
	for _, p := range paths {
		if before[p], err = stateOf(workRoot, p); err != nil {
			return "", err
		}
		// Back to the tarball's content, as a copy of its own: times are set on it below.
		if err := restoreFile(pristineRoot, workRoot, p); err != nil {
			return "", err
		}
	}
	if err := Apply(work, series); err != nil {
		return "", err
	}
	if err := retime(workRoot, paths, before, time.Now()); err != nil {
		return "", err
	}
	return TreeVersion(work)
}

// retime sets the time of each regular file of paths: unchanged content keeps its time, so make
// leaves what depends on it alone; changed content (also a file back to the tarball's, which carries
// the tarball's old time) gets now.
func retime(root *os.Root, paths []string, before map[string]fileState, now time.Time) error {
	for _, p := range paths {
		after, err := stateOf(root, p)
		if err != nil {
			return err
		}
		if !after.regular {
			continue // gone, or a symbolic link: make reads no link's time
		}
		t := now
		if b := before[p]; b.regular && b.sum == after.sum {
			t = b.mtime
		}
		if err := root.Chtimes(p, t, t); err != nil {
			return err
		}
	}
	return nil
}

// pristineTree unpacks tarball into dir once (under a staging name, renamed when complete) and
// checks its version.
func pristineTree(ctx context.Context, tarball, dir, version string, w io.Writer) (Tree, error) {
	var t Tree
	if files.ReadJSON(dir+".json", &t) == nil && files.Exists(filepath.Join(dir, "Makefile")) {
		t.Dir = dir
		return t, nil
	}
	_ = os.RemoveAll(dir)
	staging := dir + ".staging"
	_ = os.RemoveAll(staging) // left by an interrupted run
	fmt.Fprintf(w, "unpacking %s\n", tarball)
	fail := func(err error) (Tree, error) {
		_ = os.RemoveAll(staging)
		return Tree{}, err
	}
	if _, err := Unpack(ctx, tarball, staging); err != nil {
		return fail(err)
	}
	fi, err := os.Stat(filepath.Join(staging, "Makefile"))
	if err != nil {
		return fail(fmt.Errorf("%s is not a Linux source tarball: %w", tarball, err))
	}
	// The release time, for KBUILD_BUILD_TIMESTAMP: kernel.org's tarballs carry the tag's time.
	t.Timestamp = fi.ModTime().UTC()
	if t.Version, err = TreeVersion(staging); err != nil {
		return fail(err)
	}
	if version != "" && version != t.Version {
		return fail(fmt.Errorf("%s holds Linux %s, but %s was expected: check kernel.lock and the tarball", tarball, t.Version, version))
	}
	if err := files.WriteJSON(dir+".json", t); err != nil {
		return fail(err)
	}
	if err := os.Rename(staging, dir); err != nil {
		return fail(err)
	}
	t.Dir = dir
	return t, nil
}

// linkTree makes dst, a sibling of src, a copy of src whose files are hard links (copies where
// linking fails), under a staging name renamed when complete. Nothing writes to a linked file in
// place: patches replace files. Both trees are reached only through a root of their folder.
func linkTree(src, dst string) error {
	if filepath.Dir(src) != filepath.Dir(dst) {
		return fmt.Errorf("link tree: %s and %s are not in one folder", src, dst)
	}
	root, err := os.OpenRoot(filepath.Dir(dst))
	if err != nil {
		return err
	}
	defer root.Close()
	from, to, staging := filepath.Base(src), filepath.Base(dst), filepath.Base(dst)+".staging"
	_ = root.RemoveAll(to)
	_ = root.RemoveAll(staging)
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		switch {
		case d.IsDir():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return root.Mkdir(filepath.Join(staging, rel), fi.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := root.Readlink(filepath.Join(from, rel))
			if err != nil {
				return err
			}
			return root.Symlink(target, filepath.Join(staging, rel))
		case d.Type().IsRegular():
			if root.Link(filepath.Join(from, rel), filepath.Join(staging, rel)) == nil {
				return nil
			}
			return copyKeepTime(root, filepath.Join(from, rel), root, filepath.Join(staging, rel))
		}
		return nil
	})
	if err == nil {
		err = root.Rename(staging, to)
	}
	if err != nil {
		_ = root.RemoveAll(staging)
	}
	return err
}

// restoreFile puts path back in work as the pristine tree has it (a copy, not a link), or removes it
// when the tarball has no such file.
func restoreFile(pristine, work *os.Root, path string) error {
	if err := work.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	fi, err := pristine.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		target, err := pristine.Readlink(path)
		if err != nil {
			return err
		}
		return work.Symlink(target, path)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	if err := work.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return copyKeepTime(pristine, path, work, path)
}

// copyKeepTime copies the regular file from in src to a new file to in dst, with its mode and time.
func copyKeepTime(src *os.Root, from string, dst *os.Root, to string) error {
	in, err := src.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", from)
	}
	return confine.WriteNew(dst, to, in, fi.Mode().Perm(), fi.ModTime())
}

type fileState struct {
	regular bool
	sum     string
	mtime   time.Time
}

// stateOf says whether path is a regular file in root, and its digest and time.
func stateOf(root *os.Root, path string) (fileState, error) {
	fi, err := root.Lstat(path)
	if errors.Is(err, os.ErrNotExist) || err == nil && !fi.Mode().IsRegular() {
		return fileState{}, nil
	}
	if err != nil {
		return fileState{}, err
	}
	f, err := root.Open(path)
	if err != nil {
		return fileState{}, err
	}
	defer f.Close()
	sum, err := digest.Reader(f)
	if err != nil {
		return fileState{}, fmt.Errorf("hash %s: %w", path, err)
	}
	return fileState{regular: true, sum: sum, mtime: fi.ModTime()}, nil
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	for _, s := range append(append([]string(nil), a...), b...) {
		seen[s] = true
	}
	return slices.Sorted(maps.Keys(seen))
}
