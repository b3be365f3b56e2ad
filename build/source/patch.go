package source

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
)

// Patch is one entry of a series file.
type Patch struct {
	File   string // path of the patch file
	Strip  int    // leading path components removed from names in the patch (quilt's -pN), default 1
	SHA256 string
}

// ReadSeries reads dir/series (quilt's format: one patch file name per line, optionally followed by -pN;
// # starts a comment). A missing series file or an empty one is an empty series.
func ReadSeries(dir string) ([]Patch, error) {
	data, err := os.ReadFile(filepath.Join(dir, "series"))
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
		content, err := os.ReadFile(p.File)
		if err != nil {
			return nil, fmt.Errorf("%s/series line %d: %w", dir, n, err)
		}
		sum := sha256.Sum256(content)
		p.SHA256 = hex.EncodeToString(sum[:])
		out = append(out, p)
	}
	return out, sc.Err()
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
// Callers apply to a tree they can throw away: a failure leaves earlier patches applied.
func Apply(tree string, series []Patch) error {
	for _, p := range series {
		if err := applyOne(tree, p); err != nil {
			return err
		}
	}
	return nil
}

func applyOne(tree string, p Patch) error {
	data, err := os.ReadFile(p.File)
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
		if err := applyFile(tree, p, git, fd); err != nil {
			return err
		}
	}
	return nil
}

// isGitPatch tells git's format (names carry a/ and b/, which the parser removes) from plain diffs.
func isGitPatch(data []byte) bool {
	return bytes.HasPrefix(data, []byte("diff --git ")) || bytes.Contains(data, []byte("\ndiff --git "))
}

// name maps a name from the patch to a path in the tree. git-style names come with a/ and b/ already
// removed by the parser, so one component less is stripped for them.
func name(tree string, p Patch, git bool, n string) (string, error) {
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
	full := filepath.Join(tree, filepath.FromSlash(rel))
	// Refuse to write through a symlink inside the tree.
	for dir := filepath.Dir(full); len(dir) > len(tree); dir = filepath.Dir(dir) {
		if fi, err := os.Lstat(dir); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return "", fmt.Errorf("file %q is behind a symbolic link", n)
		}
	}
	return full, nil
}

func applyFile(tree string, p Patch, git bool, fd *gitdiff.File) error {
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
		if oldPath, err = name(tree, p, git, fd.OldName); err != nil {
			return fail(display, err)
		}
	}
	if !fd.IsDelete {
		if newPath, err = name(tree, p, git, fd.NewName); err != nil {
			return fail(display, err)
		}
	}
	var old []byte
	mode := os.FileMode(0o644)
	if fd.IsNew {
		if _, err := os.Lstat(newPath); err == nil {
			return fail(display, errors.New("the patch creates it, but it already exists"))
		}
	} else {
		fi, err := os.Lstat(oldPath)
		if err != nil {
			return fail(display, fmt.Errorf("file to patch: %w", err))
		}
		if !fi.Mode().IsRegular() {
			return fail(display, errors.New("not a regular file"))
		}
		mode = fi.Mode().Perm()
		if old, err = os.ReadFile(oldPath); err != nil {
			return fail(display, err)
		}
	}
	var out bytes.Buffer
	if err := gitdiff.Apply(&out, bytes.NewReader(old), fd); err != nil {
		return fail(display, err)
	}
	if fd.IsDelete {
		if out.Len() != 0 {
			return fail(display, errors.New("deletion does not match the file's content"))
		}
		return os.Remove(oldPath)
	}
	if fd.NewMode != 0 {
		mode = fd.NewMode.Perm()
	}
	if err := os.MkdirAll(filepath.Dir(newPath), 0o755); err != nil {
		return err
	}
	tmp := newPath + ".patching"
	if err := os.WriteFile(tmp, out.Bytes(), mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, newPath); err != nil {
		return err
	}
	if oldPath != "" && oldPath != newPath {
		return os.Remove(oldPath)
	}
	return nil
}

// Touched lists the files the series creates, changes, renames or deletes, as slash-separated paths
// relative to tree, sorted and each once.
func Touched(tree string, series []Patch) ([]string, error) {
	seen := map[string]bool{}
	for _, p := range series {
		data, err := os.ReadFile(p.File)
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
				full, err := name(tree, p, git, n)
				if err != nil {
					return nil, &PatchError{Patch: p.File, File: n, Err: err}
				}
				rel, err := filepath.Rel(tree, full)
				if err != nil {
					return nil, err
				}
				seen[filepath.ToSlash(rel)] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}
