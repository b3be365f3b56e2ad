package userpkg

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/xbps"
)

// PackagedWith is what packages made here say made them (props.plist's packaged-with, xbps-create -B).
const PackagedWith = "simple-uml"

// BuildOptions says where a package goes and what time its files get.
type BuildOptions struct {
	// OutDir is the folder the package is written into; it is made when missing.
	OutDir string
	// Date is every file's time when the template has no date (SOURCE_DATE_EPOCH); one of the two
	// must be set, so that the same inputs make the same package.
	Date time.Time
}

// Built is a package written by Build.
type Built struct {
	Path   string
	Pkgver string
	SHA256 string
	Size   int64
	// Entries counts the payload's files, links and folders.
	Entries int
	// RemovedSig names the old signature Build deleted: it signed the package this one replaced.
	RemovedSig string
}

// Build makes the template's package in o.OutDir as xbps-create makes it from the same folder
// (see xbps.WritePackage): the payload is read through an os.Root and its links are kept as links,
// never followed. The package is written under a temporary name and renamed.
func Build(t *Template, o BuildOptions) (*Built, error) {
	date := t.Date.Time
	if date.IsZero() {
		date = o.Date
	}
	if date.IsZero() {
		return nil, fmt.Errorf("%s: no date for the package's files: set date = %s in the template, or SOURCE_DATE_EPOCH, "+
			"so that the same inputs make the same package", t.Path, time.Now().UTC().Format("2006-01-02T00:00:00Z"))
	}
	dir := t.File(t.Payload)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: payload: %w (payload = %q names the folder whose contents the package installs at /, relative to the template)", t.Path, err, t.Payload)
	}
	defer root.Close() // the payload's files are read again while the package is written
	p, n, err := t.newPackage(root, date)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Path, err)
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	b := &Built{Path: filepath.Join(o.OutDir, p.Name()), Pkgver: p.Pkgver, Entries: n}
	previous, _ := digest.File(b.Path) // empty when there is none
	h := sha256.New()
	err = files.WriteAtomic(b.Path, 0o644, func(w io.Writer) error {
		cw := &countWriter{w: io.MultiWriter(w, h)}
		err := xbps.WritePackage(cw, p)
		b.Size = cw.n
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Path, err)
	}
	b.SHA256 = hex.EncodeToString(h.Sum(nil))
	if b.SHA256 == previous {
		return b, nil // the same bytes again: their signature still holds
	}
	if err := os.Remove(b.Path + ".sig2"); err == nil {
		b.RemovedSig = b.Path + ".sig2"
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return b, nil
}

// newPackage reads the payload (root) and the scripts the template names; n counts the payload's entries.
func (t *Template) newPackage(root *os.Root, date time.Time) (*xbps.NewPackage, int, error) {
	payload, err := xbps.ReadPayload(root.FS())
	if err != nil {
		return nil, 0, fmt.Errorf("payload %s: %w", root.Name(), err)
	}
	p := &xbps.NewPackage{
		Pkgver: t.Pkgver(), Arch: t.Arch, ShortDesc: t.ShortDesc, LongDesc: t.LongDesc, Homepage: t.Homepage,
		License: t.License, Maintainer: t.Maintainer, PackagedWith: PackagedWith,
		RunDepends: t.RunDepends, ConfFiles: t.ConfFiles, Conflicts: t.Conflicts, Provides: t.Provides,
		Replaces: t.Replaces, Reverts: t.Reverts, Alternatives: t.Alternatives, Payload: payload, ModTime: date,
	}
	for _, s := range []struct {
		key, file string
		script    **xbps.Script
		msg       *[]byte
	}{{"install", t.Install, &p.Install, nil}, {"remove", t.Remove, &p.Remove, nil},
		{"install_msg", t.InstallMsg, nil, &p.InstallMsg}, {"remove_msg", t.RemoveMsg, nil, &p.RemoveMsg}} {
		if s.file == "" {
			continue
		}
		data, mode, err := readRegular(t.File(s.file))
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", s.key, err)
		}
		if s.script != nil {
			*s.script = &xbps.Script{Data: data, Mode: mode}
		} else {
			*s.msg = data
		}
	}
	return p, len(payload), nil
}

// maxScript bounds a script or message: xbps keeps them in its database.
const maxScript = 16 << 20

func readRegular(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxScript {
		return nil, 0, fmt.Errorf("%s: want a regular file of at most %d bytes", path, maxScript)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxScript))
	return data, int64(fi.Mode().Perm()), err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
