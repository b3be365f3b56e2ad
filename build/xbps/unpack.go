package xbps

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/confine"
	"github.com/simple-uml/simple-uml/build/untar"
)

// Contents is what unpacking a .xbps file found besides the payload.
type Contents struct {
	Package    *Package
	FilesPlist []byte
	Install    []byte
	Remove     []byte
	// Paths lists every payload entry as an absolute guest path, in archive order.
	Paths []string
	// Owners maps the guest paths of entries not owned by root to "uid:gid", as the package gives them.
	Owners map[string]string
	// Modes maps the guest paths of entries with setuid or setgid bits to their permission bits as
	// chmod takes them (0o4755), which the tree on the host does not carry.
	Modes map[string]uint32
	// Newest is the latest modification time of any payload entry.
	Newest time.Time
}

// UnsafeEntryError names a package entry that would land outside the root or write through a link.
type UnsafeEntryError struct {
	Entry, Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("refusing entry %q: %s", e.Entry, e.Reason)
}

const maxMeta = 64 << 20 // INSTALL, REMOVE and the plists are small; this only stops a hostile package

// Unpack extracts a .xbps package stream into root, which may already hold other packages: missing
// parent directories are created, existing files replaced (xbps's UNLINK), and nothing is written
// outside root (every operation goes through the os.Root) or through a symbolic link. Setuid and
// setgid bits are not set on the host, where they would make real setuid files of the build's user
// (root, when run as root): they are in Contents.Modes, for the image to carry.
func Unpack(ctx context.Context, r io.Reader, root *os.Root) (*Contents, error) {
	dr, _, closer, err := Decompress(r)
	if err != nil {
		return nil, err
	}
	defer closer()
	c := &Contents{}
	tr := tar.NewReader(dr)
	var entries untar.Counter
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading package: %w", err)
		}
		if err := entries.Next("the package"); err != nil {
			return nil, err
		}
		switch hdr.Name {
		case "./INSTALL", "./REMOVE", "./props.plist", "./files.plist":
			if err := c.readMeta(hdr, tr); err != nil {
				return nil, err
			}
			continue
		}
		if c.Package == nil {
			return nil, fmt.Errorf("entry %q comes before props.plist: not an xbps package", hdr.Name)
		}
		rel, err := relPath(hdr.Name)
		if err != nil {
			return nil, err
		}
		if rel == "" {
			continue
		}
		if err := writeEntry(root, rel, hdr, tr); err != nil {
			return nil, err
		}
		if hdr.Mode&0o6000 != 0 && hdr.Typeflag != tar.TypeSymlink {
			if c.Modes == nil {
				c.Modes = map[string]uint32{}
			}
			c.Modes["/"+rel] = uint32(hdr.Mode & 0o7777)
		}
		c.Paths = append(c.Paths, "/"+rel)
		if hdr.Uid != 0 || hdr.Gid != 0 {
			if c.Owners == nil {
				c.Owners = map[string]string{}
			}
			c.Owners["/"+rel] = fmt.Sprintf("%d:%d", hdr.Uid, hdr.Gid)
		}
		if hdr.ModTime.After(c.Newest) {
			c.Newest = hdr.ModTime
		}
	}
	if err := untar.CheckEnd(dr); err != nil {
		return nil, fmt.Errorf("reading package: %w", err)
	}
	if c.Package == nil {
		return nil, errors.New("no props.plist: not an xbps package")
	}
	return c, nil
}

// readMeta reads one of the package's metadata entries (its scripts, props.plist, files.plist),
// each bounded by maxMeta.
func (c *Contents) readMeta(hdr *tar.Header, tr io.Reader) error {
	if hdr.Size > maxMeta {
		return fmt.Errorf("%s is %d bytes", hdr.Name, hdr.Size)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return fmt.Errorf("reading %s: %w", hdr.Name, err)
	}
	switch hdr.Name {
	case "./INSTALL":
		c.Install = data
	case "./REMOVE":
		c.Remove = data
	case "./files.plist":
		c.FilesPlist = data
	case "./props.plist":
		props, err := decodeDict(data)
		if err != nil {
			return fmt.Errorf("props.plist: %w", err)
		}
		if c.Package, err = PackageFromProps(props); err != nil {
			return fmt.Errorf("props.plist: %w", err)
		}
	}
	return nil
}

// relPath turns "./usr/bin/foo" into "usr/bin/foo", refusing names that do not start with "./"
// (absolute ones among them: xbps-create writes every entry so, and xbps refuses the package) and "..".
func relPath(name string) (string, error) {
	if name == "." || name == "./" {
		return "", nil
	}
	n, ok := strings.CutPrefix(name, "./")
	if !ok {
		return "", &UnsafeEntryError{name, "the name does not start with ./ (an absolute or bare path); xbps refuses such a package"}
	}
	if strings.HasPrefix(n, "/") {
		return "", &UnsafeEntryError{name, "absolute path"}
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", &UnsafeEntryError{name, "contains .."}
		}
	}
	return path.Clean(n), nil
}

// MkParents creates the directories above rel (a clean path relative to root), refusing to go
// through any that is a symlink, so that nothing is written where a link points.
func MkParents(root *os.Root, rel string) error {
	parts := strings.Split(rel, "/")
	for i := range parts[:len(parts)-1] {
		dir := strings.Join(parts[:i+1], "/")
		fi, err := root.Lstat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := root.Mkdir(dir, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return &UnsafeEntryError{"./" + rel, "a parent directory is a symbolic link (/" + dir + "); writing through it is refused"}
		case !fi.IsDir():
			return &UnsafeEntryError{"./" + rel, "a parent is a file, not a directory"}
		}
	}
	return nil
}

// FileMode turns a tar header's mode (chmod's bits, 0o4755) into permission and special bits.
func FileMode(m int64) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func writeEntry(root *os.Root, rel string, hdr *tar.Header, r io.Reader) error {
	if err := MkParents(root, rel); err != nil {
		return err
	}
	// On the host: no setuid or setgid (see Unpack); the sticky bit is harmless.
	mode := FileMode(hdr.Mode) &^ (fs.ModeSetuid | fs.ModeSetgid)
	if hdr.Typeflag == tar.TypeDir {
		if fi, err := root.Lstat(rel); err == nil && fi.IsDir() {
			return nil
		}
		if err := root.Mkdir(rel, 0o700); err != nil {
			return err
		}
		return root.Chmod(rel, mode|0o700)
	}
	if fi, err := root.Lstat(rel); err == nil {
		if fi.IsDir() {
			return &UnsafeEntryError{hdr.Name, "a directory is in the way"}
		}
		if err := root.Remove(rel); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		if err := confine.WriteNew(root, rel, r, mode, hdr.ModTime); err != nil {
			return fmt.Errorf("writing %s: %w", rel, err)
		}
		return nil
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return &UnsafeEntryError{hdr.Name, "empty symlink target"}
		}
		return root.Symlink(hdr.Linkname, rel)
	case tar.TypeLink:
		target, err := relPath(hdr.Linkname)
		if err != nil || target == "" {
			return &UnsafeEntryError{hdr.Name, "hard link target " + hdr.Linkname + " is outside the package root"}
		}
		fi, err := root.Lstat(target)
		if err != nil || !fi.Mode().IsRegular() {
			return &UnsafeEntryError{hdr.Name, "hard link target " + hdr.Linkname + " is not a regular file of the root"}
		}
		return root.Link(target, rel)
	}
	return &UnsafeEntryError{hdr.Name, fmt.Sprintf("entry type %q is not allowed in a package", hdr.Typeflag)}
}
