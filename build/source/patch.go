package source

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bluekeyes/go-gitdiff/gitdiff"

	"github.com/simple-uml/simple-uml/build/confine"
	"github.com/simple-uml/simple-uml/build/digest"
)

// Patch is one entry of a series file.
type Patch struct {
	File   string // path of the patch file
	Strip  int    // leading path components removed from names in the patch (quilt's -pN), default 1
	SHA256 string
}

// ReadSeries reads dir/series (quilt's format: one patch file name per line, optionally followed by -pN;
// # starts a comment). A missing series file or an empty one is an empty series. Patches are read
// through an os.Root of dir: a name, or a link in dir, that leads outside it is refused.
func ReadSeries(dir string) ([]Patch, error) {
	root, err := os.OpenRoot(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer root.Close()
	data, err := root.ReadFile("series")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Patch
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		p := Patch{File: filepath.Join(dir, fields[0]), Strip: 1}
		if strings.Contains(fields[0], "..") || filepath.IsAbs(fields[0]) {
			return nil, fmt.Errorf("%s/series line %d: patch %q must be inside %s", dir, n, fields[0], dir)
		}
		for _, opt := range fields[1:] {
			s, ok := strings.CutPrefix(opt, "-p")
			strip, err := strconv.Atoi(s)
			if !ok || err != nil || strip < 0 {
				return nil, fmt.Errorf("%s/series line %d: unknown option %q (only -pN is supported)", dir, n, opt)
			}
			p.Strip = strip
		}
		content, err := root.ReadFile(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s/series line %d: %w", dir, n, err)
		}
		p.SHA256 = digest.Bytes(content)
		out = append(out, p)
	}
	return out, sc.Err()
}

// readPatch reads a patch of the series and checks it is what ReadSeries read (through its root).
func readPatch(p Patch) ([]byte, error) {
	data, err := os.ReadFile(p.File)
	if err != nil {
		return nil, err
	}
	if p.SHA256 != "" && digest.Bytes(data) != p.SHA256 {
		return nil, fmt.Errorf("patch %s changed since the series was read; run again", p.File)
	}
	return data, nil
}

// PatchError names the patch, file and hunk that did not apply.
type PatchError struct {
	Patch string
	File  string
	Hunk  int   // 1-based; 0 when the failure is not about one hunk
	Line  int64 // 1-based line in the source file where it failed, when known
	Err   error
}

func (e *PatchError) Error() string {
	where := e.File
	if e.Hunk > 0 {
		where += fmt.Sprintf(", hunk #%d", e.Hunk)
	}
	if e.Line > 0 {
		where += fmt.Sprintf(" (at line %d)", e.Line)
	}
	return fmt.Sprintf("patch %s does not apply: %s: %v; refresh the patch against this kernel version (patches apply without fuzz)", e.Patch, where, e.Err)
}

func (e *PatchError) Unwrap() error { return e.Err }

// Apply applies the patches to tree in order. It stops at the first patch that does not apply exactly.
// Callers apply to a tree they can throw away: a failure leaves earlier patches applied. Files are
// read and written through an os.Root of tree, never through a symbolic link in it: the tree came
// from a tarball, whose links are not to be trusted with writes.
func Apply(tree string, series []Patch) error {
	root, err := os.OpenRoot(tree)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, p := range series {
		if err := applyOne(root, p); err != nil {
			return err
		}
	}
	return nil
}

func applyOne(root *os.Root, p Patch) error {
	data, err := readPatch(p)
	if err != nil {
		return err
	}
	files, _, err := gitdiff.Parse(bytes.NewReader(data))
	if err != nil {
		return &PatchError{Patch: p.File, Err: fmt.Errorf("not a readable diff: %w", err)}
	}
	if len(files) == 0 {
		return &PatchError{Patch: p.File, Err: errors.New("contains no changes")}
	}
	git := isGitPatch(data)
	for _, fd := range files {
		if err := applyFile(root, p, git, fd); err != nil {
			return err
		}
	}
	return nil
}

// isGitPatch tells git's format (names carry a/ and b/, which the parser removes) from plain diffs.
func isGitPatch(data []byte) bool {
	return bytes.HasPrefix(data, []byte("diff --git ")) || bytes.Contains(data, []byte("\ndiff --git "))
}

// name maps a name from the patch to a slash-separated path relative to the tree. git-style names come
// with a/ and b/ already removed by the parser, so one component less is stripped for them. A name
// behind a symbolic link of the tree is refused.
func name(root *os.Root, p Patch, git bool, n string) (string, error) {
	strip := p.Strip
	if git {
		strip--
	}
	parts := strings.Split(n, "/")
	if strip > 0 {
		if strip >= len(parts) {
			return "", fmt.Errorf("cannot strip %d components from %q", p.Strip, n)
		}
		parts = parts[strip:]
	}
	rel := path.Clean(strings.Join(parts, "/"))
	if rel == "." || strings.HasPrefix(rel, "../") || rel == ".." || path.IsAbs(rel) {
		return "", fmt.Errorf("file %q is outside the tree", n)
	}
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		if fi, err := root.Lstat(dir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return "", fmt.Errorf("file %q is behind a symbolic link", n)
		}
	}
	return rel, nil
}

// git's file modes for what is not a regular file.
const (
	gitTypeMask = 0o170000
	gitSymlink  = 0o120000
	gitRegular  = 0o100000
)

func applyFile(root *os.Root, p Patch, git bool, fd *gitdiff.File) error {
	fail := func(file string, err error) error {
		pe := &PatchError{Patch: p.File, File: file, Err: err}
		var ae *gitdiff.ApplyError
		if errors.As(err, &ae) {
			pe.Hunk, pe.Line = ae.Fragment, ae.Line
		}
		return pe
	}
	display := fd.NewName
	if display == "" {
		display = fd.OldName
	}
	var oldPath, newPath string
	var err error
	if !fd.IsNew {
		if oldPath, err = name(root, p, git, fd.OldName); err != nil {
			return fail(display, err)
		}
	}
	if !fd.IsDelete {
		if newPath, err = name(root, p, git, fd.NewName); err != nil {
			return fail(display, err)
		}
	}
	for _, m := range []os.FileMode{fd.OldMode, fd.NewMode} {
		if t := uint32(m) & gitTypeMask; t != 0 && t != gitRegular && t != gitSymlink {
			return fail(display, fmt.Errorf("file mode %o is neither a file nor a symbolic link (a submodule?)", uint32(m)))
		}
	}
	var old []byte
	mode := os.FileMode(0o644)
	if fd.IsNew {
		if _, err := root.Lstat(newPath); err == nil {
			return fail(display, errors.New("the patch creates it, but it already exists"))
		}
	} else if old, mode, err = readOld(root, oldPath, fd); err != nil {
		return fail(display, err)
	}
	var out bytes.Buffer
	if err := gitdiff.Apply(&out, bytes.NewReader(old), fd); err != nil {
		return fail(display, err)
	}
	if fd.IsDelete {
		if out.Len() != 0 {
			return fail(display, errors.New("deletion does not match the file's content"))
		}
		return root.Remove(oldPath)
	}
	if fd.NewMode != 0 {
		mode = fd.NewMode.Perm()
	}
	if err := root.MkdirAll(path.Dir(newPath), 0o755); err != nil {
		return err
	}
	isLink := uint32(fd.NewMode)&gitTypeMask == gitSymlink || fd.NewMode == 0 && uint32(fd.OldMode)&gitTypeMask == gitSymlink
	if err := writeResult(root, newPath, out.Bytes(), mode, isLink); err != nil {
		return fail(display, err)
	}
	if oldPath != "" && oldPath != newPath {
		return root.Remove(oldPath)
	}
	return nil
}

// readOld reads the file a patch changes: a regular file's content and mode, or a symbolic link's
// target (git diffs a link as its target, without a newline).
func readOld(root *os.Root, oldPath string, fd *gitdiff.File) ([]byte, os.FileMode, error) {
	fi, err := root.Lstat(oldPath)
	if err != nil {
		return nil, 0, fmt.Errorf("file to patch: %w", err)
	}
	switch {
	case fi.Mode().IsRegular():
		data, err := root.ReadFile(oldPath)
		return data, fi.Mode().Perm(), err
	case fi.Mode()&os.ModeSymlink != 0 && uint32(fd.OldMode)&gitTypeMask == gitSymlink:
		target, err := root.Readlink(oldPath)
		return []byte(target), 0o644, err
	}
	return nil, 0, errors.New("not a regular file")
}

// writeResult puts a patched file (or symbolic link) in place under a temporary name made anew, so
// that nothing is written through a name the tarball planted and a hard link to the pristine tree
// is replaced rather than written into.
func writeResult(root *os.Root, rel string, data []byte, mode os.FileMode, isLink bool) error {
	tmp := rel + ".patching"
	if err := root.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if isLink {
		target := string(data)
		if err := checkLinkInTree(root, rel, target); err != nil {
			return err
		}
		if err := root.Symlink(target, tmp); err != nil {
			return err
		}
		return root.Rename(tmp, rel)
	}
	if err := confine.WriteNew(root, tmp, bytes.NewReader(data), mode, time.Time{}); err != nil {
		return err
	}
	return root.Rename(tmp, rel)
}

// checkLinkInTree refuses a symbolic link a patch makes unless its target stays in the tree: relative,
// never above the tree's top, and through no symbolic link of the tree (whose own target could lead
// anywhere from there).
func checkLinkInTree(root *os.Root, rel, target string) error {
	if target == "" || path.IsAbs(target) || strings.ContainsAny(target, "\x00\n") {
		return fmt.Errorf("symbolic link to %q: only relative links inside the tree are made", target)
	}
	cur := strings.Split(path.Dir(rel), "/")
	if cur[0] == "." {
		cur = nil
	}
	parts := strings.Split(target, "/")
	for i, part := range parts {
		switch part {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return fmt.Errorf("symbolic link to %q leaves the tree", target)
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, part)
		if fi, err := root.Lstat(strings.Join(cur, "/")); err == nil && fi.Mode()&os.ModeSymlink != 0 && i < len(parts)-1 {
			return fmt.Errorf("symbolic link to %q goes through the symbolic link %s", target, strings.Join(cur, "/"))
		}
	}
	return nil
}

// Touched lists the files the series creates, changes, renames or deletes, as slash-separated paths
// relative to tree, sorted and each once.
func Touched(tree string, series []Patch) ([]string, error) {
	root, err := os.OpenRoot(tree)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	seen := map[string]bool{}
	for _, p := range series {
		data, err := readPatch(p)
		if err != nil {
			return nil, err
		}
		files, _, err := gitdiff.Parse(bytes.NewReader(data))
		if err != nil {
			return nil, &PatchError{Patch: p.File, Err: fmt.Errorf("not a readable diff: %w", err)}
		}
		git := isGitPatch(data)
		for _, fd := range files {
			var names []string
			if !fd.IsNew {
				names = append(names, fd.OldName)
			}
			if !fd.IsDelete {
				names = append(names, fd.NewName)
			}
			for _, n := range names {
				rel, err := name(root, p, git, n)
				if err != nil {
					return nil, &PatchError{Patch: p.File, File: n, Err: err}
				}
				seen[rel] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}
