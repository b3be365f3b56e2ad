// Package xbpstest writes xbps packages and repositories for tests that need a repository with real
// binaries (official Void mirrors are out of reach on the machines that test this project), through
// build/xbps's writers, which write them as xbps-create and xbps-rindex do; it adds what tests want
// beyond them (files given as a map, hostile raw entries, packages left unsigned, any index). It is
// imported only by tests.
package xbpstest

import (
	"archive/tar"
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/simple-uml/simple-uml/build/xbps"
)

// File is one payload entry. Exactly one of Data (regular file), Link (symlink) or Hardlink is used.
type File struct {
	Data     []byte
	Mode     int64 // permission bits incl. setuid; 0644 or 0755 when zero
	Link     string
	Hardlink string // "./path" of an earlier entry
}

// Package describes a package to build.
type Package struct {
	Pkgver        string
	Arch          string // default "x86_64"
	ShortDesc     string
	License       string
	RunDepends    []string
	Provides      []string
	Replaces      []string
	Conflicts     []string
	ConfFiles     []string
	ShlibProvides []string
	Alternatives  map[string][]string
	Install       string // INSTALL script
	Files         map[string]File
	// Raw payload entries appended after Files, for hostile packages: any name, any type.
	Raw []*tar.Header
}

// Epoch is the fixed time of every entry, so fixtures are reproducible.
var Epoch = time.Unix(1700000000, 0).UTC()

// Build returns the .xbps bytes, written by xbps.WritePackage as xbps-create would write the files
// of p laid out in a folder, and its props.plist dictionary. Raw entries follow the payload.
func Build(p Package) ([]byte, map[string]any, error) {
	np, err := p.newPackage()
	if err != nil {
		return nil, nil, err
	}
	props, err := np.Props()
	if err != nil {
		return nil, nil, err
	}
	var out bytes.Buffer
	if len(p.Raw) == 0 {
		err := xbps.WritePackage(&out, np)
		return out.Bytes(), props, err
	}
	zw, err := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, nil, err
	}
	tw := tar.NewWriter(zw)
	if err := xbps.WritePackageTar(tw, np); err != nil {
		return nil, nil, err
	}
	for _, h := range p.Raw {
		if err := tw.WriteHeader(h); err != nil {
			return nil, nil, err
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(make([]byte, h.Size))
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return out.Bytes(), props, nil
}

// newPackage lays p's files out as a folder (an fstest.MapFS) and reads it as xbps-create would.
func (p Package) newPackage() (*xbps.NewPackage, error) {
	if _, _, ok := xbps.SplitPkgver(p.Pkgver); !ok {
		return nil, fmt.Errorf("bad pkgver %q", p.Pkgver)
	}
	name, _, _ := xbps.SplitPkgver(p.Pkgver)
	fsys := fstest.MapFS{}
	for n, f := range p.Files {
		rel := strings.TrimPrefix(n, "./")
		switch {
		case f.Link != "":
			fsys[rel] = &fstest.MapFile{Data: []byte(f.Link), Mode: fs.ModeSymlink | 0o777, ModTime: Epoch}
		case f.Hardlink != "":
			of := p.Files[f.Hardlink]
			fsys[rel] = &fstest.MapFile{Data: of.Data, Mode: fileMode(of.Mode), ModTime: Epoch}
		default:
			fsys[rel] = &fstest.MapFile{Data: f.Data, Mode: fileMode(f.Mode), ModTime: Epoch}
		}
	}
	payload, err := xbps.ReadPayload(fsys)
	if err != nil {
		return nil, err
	}
	// A hard link and the file it names are one file: give both one identity, as an inode would.
	group := map[string]string{}
	for n, f := range p.Files {
		if f.Hardlink != "" {
			group[n], group[f.Hardlink] = f.Hardlink, f.Hardlink
		}
	}
	for i := range payload {
		if g, ok := group[payload[i].Path]; ok {
			sum := sha256.Sum256([]byte(g))
			payload[i].ID = xbps.FileID{Ino: binary.BigEndian.Uint64(sum[:8])}
		}
	}
	np := &xbps.NewPackage{
		Pkgver: p.Pkgver, Arch: orDefault(p.Arch, "x86_64"), ShortDesc: orDefault(p.ShortDesc, name+" (test package)"),
		License: orDefault(p.License, "GPL-2.0-only"), PackagedWith: "simple-uml xbpstest",
		RunDepends: p.RunDepends, Provides: p.Provides, Replaces: p.Replaces, Conflicts: p.Conflicts, ConfFiles: p.ConfFiles,
		ShlibProvides: p.ShlibProvides, Alternatives: p.Alternatives, Payload: payload, ModTime: Epoch,
	}
	if p.Install != "" {
		np.Install = &xbps.Script{Data: []byte(p.Install), Mode: 0o755}
	}
	return np, nil
}

// fileMode is xbps.FileMode with a test file's default: zero is 0644.
func fileMode(m int64) fs.FileMode {
	if m == 0 {
		m = 0o644
	}
	return xbps.FileMode(m)
}

// Repo is a repository to write.
type Repo struct {
	Dir  string
	Arch string // default x86_64
	Key  *rsa.PrivateKey
	// Unsigned lists pkgnames whose .sig2 is left out.
	Unsigned map[string]bool
	// SignedBy is the signer the index names; empty means a plain test name.
	SignedBy string
}

func (r Repo) signer() string {
	if r.SignedBy != "" {
		return r.SignedBy
	}
	return "simple-uml test <test@localhost>"
}

// Write builds the packages into r.Dir with .sig2 files and an <arch>-repodata, as xbps-rindex -a,
// --sign-pkg and --sign write them (xbps's own writers), but that every package goes into the index,
// the last of a name winning.
func (r Repo) Write(pkgs []Package) error {
	if r.Arch == "" {
		r.Arch = "x86_64"
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return err
	}
	index := map[string]any{}
	for _, p := range pkgs {
		if p.Arch == "" {
			p.Arch = r.Arch
		}
		data, props, err := Build(p)
		if err != nil {
			return err
		}
		file := filepath.Join(r.Dir, p.Pkgver+"."+p.Arch+".xbps")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			return err
		}
		entry, err := xbps.IndexEntry(bytes.NewReader(data))
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		if r.Key != nil && !r.Unsigned[props["pkgname"].(string)] {
			sig, err := xbps.SignPackage(r.Key, sum[:])
			if err != nil {
				return err
			}
			if err := os.WriteFile(file+".sig2", sig, 0o644); err != nil {
				return err
			}
		}
		index[props["pkgname"].(string)] = entry
	}
	return r.WriteRepodata(index)
}

// WriteRepodata writes <arch>-repodata for an index dictionary, whatever it holds.
func (r Repo) WriteRepodata(index map[string]any) error {
	if r.Arch == "" {
		r.Arch = "x86_64"
	}
	var meta map[string]any
	if r.Key != nil {
		var err error
		if meta, err = xbps.SignedMeta(&r.Key.PublicKey, r.signer()); err != nil {
			return err
		}
	}
	var out bytes.Buffer
	if err := xbps.WriteRepodata(&out, index, meta); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.Dir, r.Arch+"-repodata"), out.Bytes(), 0o644)
}

// Fingerprint is the xbps fingerprint of the repository key.
func (r Repo) Fingerprint() string { return xbps.Fingerprint(&r.Key.PublicKey) }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
