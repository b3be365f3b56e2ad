// Package confine holds the file operation that every tree the pipeline builds shares (source trees,
// staged root filesystems, patched files, the working tree): writing a new file through an os.Root,
// so that no link in the tree, planted by an archive or a package, can lead the write outside it or
// into another file.
package confine

import (
	"io"
	"io/fs"
	"os"
	"time"
)

// WriteNew creates name in root, failing if anything is there already (a link or a hard link planted
// there is never written through), copies r into it, then gives it mode (after writing, so a read-only
// mode does not stop the write; umask plays no part) and, unless mtime is zero, that modification time.
func WriteNew(root *os.Root, name string, r io.Reader, mode fs.FileMode, mtime time.Time) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if mtime.IsZero() {
		return nil
	}
	return root.Chtimes(name, mtime, mtime)
}
