// Package files holds the few file operations every stage shares: writing a file or a folder so that
// readers see the old one or the new one whole, never half, and reading back a JSON record.
package files

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// TempPrefix starts the names WriteAtomic writes before renaming: "." + the final name + TempPrefix.
const TempPrefix = ".tmp-"

// WriteAtomic writes path from fill's output under a temporary name in the same folder, then renames
// it into place with mode: an interrupted write leaves the old file (and a dot-named temporary that
// the stage's next run sweeps).
func WriteAtomic(path string, mode os.FileMode, fill func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+TempPrefix)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	err = fill(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// WriteBytes writes data to path atomically (see WriteAtomic).
func WriteBytes(path string, data []byte, mode os.FileMode) error {
	return WriteAtomic(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteJSON writes v to path atomically as indented JSON, the form of every record in dist/ and the
// cache.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return WriteBytes(path, append(data, '\n'), 0o644)
}

// ReadJSON reads the JSON file at path into v, the counterpart of WriteJSON.
func ReadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Exists reports whether something is at path.
func Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ReplaceDir puts the folder staged at from in the place of to, keeping the old one until the new
// one is in place.
func ReplaceDir(from, to string) error {
	old := to + ".old"
	os.RemoveAll(old)
	if err := os.Rename(to, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(from, to); err != nil {
		os.Rename(old, to)
		return err
	}
	return os.RemoveAll(old)
}

// LinkOrCopy puts src at dst, replacing it atomically: a hard link when both are on one file system,
// else a copy with src's mode.
func LinkOrCopy(src, dst string) error {
	tmp := dst + ".tmp"
	os.Remove(tmp)
	if err := os.Link(src, tmp); err == nil {
		return os.Rename(tmp, dst)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	return WriteAtomic(dst, fi.Mode().Perm(), func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// RemoveAllWritable removes a folder whose directories may be read-only, as a folder dumped from an
// image or a module cache holds: RemoveAll cannot empty those as an ordinary user. Symbolic links are
// removed, never followed.
func RemoveAllWritable(dir string) error {
	info, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.IsDir() {
		makeWritable(dir)
	}
	return os.RemoveAll(dir) // removes links, never what they point to
}

// makeWritable gives the owner the rights to empty every folder under dir, through an os.Root: a
// folder swapped for a link meanwhile cannot make it change a mode outside.
func makeWritable(dir string) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return // RemoveAll says why
	}
	defer root.Close()
	root.Chmod(".", 0o700)
	fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			root.Chmod(p, 0o700)
		}
		return nil
	})
}

// Stream copies the content of the file at path to w.
func Stream(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}
