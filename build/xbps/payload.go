package xbps

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"syscall"
)

// EntryKind is what a payload entry is, in xbps-create's words (files.plist's keys).
type EntryKind int

const (
	KindFile EntryKind = iota // a regular file ("files", or "conf_files" when the package names it so)
	KindLink                  // a symbolic link ("links")
	KindDir                   // a folder ("dirs"): listed in files.plist, never in the archive
)

// FileID tells hard links apart: entries with the same non-zero FileID are one file. ReadPayload
// fills it from the file system (device and inode); a zero FileID is a file of its own.
type FileID struct{ Dev, Ino uint64 }

// PayloadEntry is one path of a package's payload as xbps-create records it.
type PayloadEntry struct {
	// Path is the archive name: "./usr/bin/foo".
	Path string
	Kind EntryKind
	// Mode is the permission bits with setuid, setgid and sticky, as chmod takes them (0o4755).
	Mode int64
	// Link is a symbolic link's text, which the archive keeps as it is.
	Link string
	// Target is where files.plist says a link leads (see linkTarget).
	Target string
	// Size and SHA256 (lowercase hex) are a regular file's.
	Size   int64
	SHA256 string
	// ID groups hard links (see FileID).
	ID FileID
	// Open returns a regular file's contents, the bytes Size and SHA256 describe.
	Open func() (io.ReadCloser, error)
}

// metaNames are the names at the top of a folder that xbps-create takes for the package's own
// files (scripts, messages, xbps-src's lists) rather than payload.
var metaNames = []string{"INSTALL", "REMOVE", "INSTALL.msg", "REMOVE.msg", "props.plist", "files.plist", "flist", "rdeps", "shlib-provides", "shlib-requires"}

// maxLinkHops bounds the links followed while resolving one link, as the kernel's ELOOP does.
const maxLinkHops = 40

// ReadPayload lists the folder fsys as xbps-create walks its destdir: each folder's names in
// reverse byte order, a folder's contents before the folder, links never followed (fsys must be an
// fs.ReadLinkFS when the folder holds links). Regular files are hashed here, and Open reads them
// again for the archive. Names at the top that xbps-create would take for the package's own files
// (INSTALL, props.plist, ...) and anything but files, folders and links are refused: they belong in
// the template, or in no package.
//
// xbps-create sorts with the locale's collation (alphasort); this is the C locale's byte order,
// what xbps-create does under LC_ALL=C or C.UTF-8.
func ReadPayload(fsys fs.FS) ([]PayloadEntry, error) {
	var out []PayloadEntry
	if err := walkPayload(fsys, ".", &out); err != nil {
		return nil, err
	}
	return out, nil
}

func walkPayload(fsys fs.FS, dir string, out *[]PayloadEntry) error {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return err
	}
	slices.Reverse(entries) // fs.ReadDir sorts by name, bytewise
	for _, d := range entries {
		rel := path.Join(dir, d.Name())
		if dir == "." && slices.Contains(metaNames, d.Name()) {
			return fmt.Errorf("%s: xbps-create takes a file of this name at the top of the payload for the package's own; "+
				"name scripts and messages in the template (install, remove, install_msg, remove_msg), or move it into a folder", rel)
		}
		fi, err := fs.Lstat(fsys, rel)
		if err != nil {
			return err
		}
		e := PayloadEntry{Path: "./" + rel, Mode: int64(fi.Mode().Perm())}
		if fi.Mode()&fs.ModeSetuid != 0 {
			e.Mode |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			e.Mode |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			e.Mode |= 0o1000
		}
		switch {
		case fi.IsDir():
			if err := walkPayload(fsys, rel, out); err != nil {
				return err
			}
			e.Kind = KindDir
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Kind = KindLink
			if e.Link, err = fs.ReadLink(fsys, rel); err != nil {
				return err
			}
			if e.Target, err = linkTarget(fsys, rel, e.Link); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := hashPayloadFile(fsys, rel, fi, &e); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s is a %s: a package holds only files, folders and symbolic links", rel, typeName(fi.Mode()))
		}
		*out = append(*out, e)
	}
	return nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// hashPayloadFile fills a regular file's size, digest, identity and opener.
func hashPayloadFile(fsys fs.FS, rel string, fi fs.FileInfo, e *PayloadEntry) error {
	e.Kind = KindFile
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		e.ID = FileID{Dev: uint64(st.Dev), Ino: st.Ino}
	}
	e.Open = func() (io.ReadCloser, error) { return openRegular(fsys, rel, fi) }
	f, err := e.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if e.Size, err = io.Copy(h, f); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	e.SHA256 = hex.EncodeToString(h.Sum(nil))
	return nil
}

// openRegular opens what Lstat found as a regular file, and makes sure the file opened is that one:
// a name swapped for a link in between would otherwise be followed.
func openRegular(fsys fs.FS, rel string, want fs.FileInfo) (io.ReadCloser, error) {
	f, err := fsys.Open(rel)
	if err != nil {
		return nil, err
	}
	got, err := f.Stat()
	if err == nil && (!got.Mode().IsRegular() || (want.Sys() != nil && !sameFile(got, want))) {
		err = fmt.Errorf("%s changed while it was packaged", rel)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func sameFile(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// linkTarget is the "target" xbps-create records in files.plist for the link at rel whose text is
// text (bin/xbps-create/main.c):
//   - text holding "./" (such as "../lib/x"): the path the link resolves to inside the package, as
//     realpath(3) finds it, or the text itself when it does not resolve (a missing file, a loop);
//   - other relative text: the link's folder joined with it ("/usr/bin" + "busybox");
//   - absolute text: itself.
//
// Each with repeated slashes squeezed, as xbps_sanitize_path does. Where xbps-create's realpath
// would consult the host (an absolute link met on the way, or ".." above the folder), this resolves
// inside the folder as the installed system will, and a path leading out of it counts as not
// resolving.
func linkTarget(fsys fs.FS, rel, text string) (string, error) {
	switch {
	case strings.Contains(text, "./"):
		resolved, ok, err := resolveIn(fsys, rel)
		if err != nil {
			return "", err
		}
		if !ok {
			return squeezeSlashes(text), nil
		}
		if resolved == "/" {
			return "", fmt.Errorf("%s: the link %q leads to the top of the payload, which xbps-create cannot record (it aborts)", rel, text)
		}
		return resolved, nil
	case !strings.HasPrefix(text, "/"):
		return squeezeSlashes(path.Dir("/"+rel) + "/" + text), nil
	}
	return squeezeSlashes(text), nil
}

// resolveIn follows rel through fsys's links and returns the absolute path it leads to. ok is false
// when it leads nowhere: a missing name, a file used as a folder, too many links, or out of fsys.
func resolveIn(fsys fs.FS, rel string) (resolved string, ok bool, err error) {
	var cur []string
	todo := strings.Split(rel, "/")
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return "", false, nil
			}
			cur = cur[:len(cur)-1]
			continue
		}
		p := path.Join(append(slices.Clone(cur), c)...)
		fi, err := fs.Lstat(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		}
		if err != nil {
			return "", false, err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if hops++; hops > maxLinkHops {
				return "", false, nil
			}
			text, err := fs.ReadLink(fsys, p)
			if err != nil {
				return "", false, err
			}
			if strings.HasPrefix(text, "/") {
				cur = nil
			}
			todo = append(strings.Split(text, "/"), todo...)
		case !fi.IsDir() && len(todo) > 0:
			return "", false, nil // ENOTDIR
		default:
			cur = append(cur, c)
		}
	}
	return "/" + strings.Join(cur, "/"), true, nil
}

func squeezeSlashes(s string) string {
	for strings.Contains(s, "//") {
		s = strings.ReplaceAll(s, "//", "/")
	}
	return s
}
