// Package xbpstest writes xbps packages and repositories the way xbps-create and xbps-rindex lay
// them out, for tests that need a repository with real binaries (official Void mirrors are out of
// reach on the machines that test this project). It is imported only by tests.
package xbpstest

import (
	"archive/tar"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/simple-uml/simple-uml/build/xbps"
	"github.com/simple-uml/simple-uml/build/xbps/proplib"
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

// Build returns the .xbps bytes (zstd tar: INSTALL, props.plist, files.plist, payload).
func Build(p Package) ([]byte, map[string]any, error) {
	name, version, ok := xbps.SplitPkgver(p.Pkgver)
	if !ok {
		return nil, nil, fmt.Errorf("bad pkgver %q", p.Pkgver)
	}
	if p.Arch == "" {
		p.Arch = "x86_64"
	}
	props := map[string]any{
		"pkgver": p.Pkgver, "pkgname": name, "version": version, "architecture": p.Arch,
		"short_desc": orDefault(p.ShortDesc, name+" (test package)"), "license": orDefault(p.License, "GPL-2.0-only"),
		"packaged-with": "simple-uml xbpstest",
	}
	var size uint64
	for _, f := range p.Files {
		size += uint64(len(f.Data))
	}
	props["installed_size"] = size
	setList(props, "run_depends", p.RunDepends)
	setList(props, "provides", p.Provides)
	setList(props, "replaces", p.Replaces)
	setList(props, "conflicts", p.Conflicts)
	setList(props, "conf_files", p.ConfFiles)
	setList(props, "shlib-provides", p.ShlibProvides)
	if len(p.Alternatives) > 0 {
		alts := map[string]any{}
		for g, l := range p.Alternatives {
			alts[g] = toAny(l)
		}
		props["alternatives"] = alts
	}
	names := make([]string, 0, len(p.Files))
	for n := range p.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	var files, links, confs []any
	for _, n := range names {
		f := p.Files[n]
		abs := n[1:] // "./usr/bin/x" -> "/usr/bin/x"
		switch {
		case f.Link != "":
			links = append(links, map[string]any{"file": abs, "target": f.Link})
		default:
			sum := sha256.Sum256(f.Data)
			e := map[string]any{"file": abs, "sha256": hex.EncodeToString(sum[:]), "size": uint64(len(f.Data))}
			if slices.Contains(p.ConfFiles, abs) {
				confs = append(confs, e)
			} else {
				files = append(files, e)
			}
		}
	}
	fp := map[string]any{}
	for k, v := range map[string][]any{"files": files, "links": links, "conf_files": confs} {
		if len(v) > 0 {
			fp[k] = v
		}
	}
	propsXML, err := proplib.Marshal(props)
	if err != nil {
		return nil, nil, err
	}
	filesXML, err := proplib.Marshal(fp)
	if err != nil {
		return nil, nil, err
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	add := func(h *tar.Header, data []byte) error {
		h.ModTime, h.Uname, h.Gname, h.Format = Epoch, "root", "root", tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if p.Install != "" {
		if err := add(&tar.Header{Name: "./INSTALL", Mode: 0o755, Typeflag: tar.TypeReg}, []byte(p.Install)); err != nil {
			return nil, nil, err
		}
	}
	add(&tar.Header{Name: "./props.plist", Mode: 0o644, Typeflag: tar.TypeReg}, propsXML)
	add(&tar.Header{Name: "./files.plist", Mode: 0o644, Typeflag: tar.TypeReg}, filesXML)
	for _, n := range names {
		f := p.Files[n]
		h := &tar.Header{Name: n, Mode: f.Mode}
		switch {
		case f.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Link, 0o777
		case f.Hardlink != "":
			h.Typeflag, h.Linkname = tar.TypeLink, f.Hardlink
		default:
			h.Typeflag = tar.TypeReg
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		}
		var data []byte
		if h.Typeflag == tar.TypeReg {
			data = f.Data
		}
		if err := add(h, data); err != nil {
			return nil, nil, err
		}
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
	var out bytes.Buffer
	zw, _ := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
	zw.Write(tarBuf.Bytes())
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return out.Bytes(), props, nil
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

// Write builds the packages into r.Dir with .sig2 files and an <arch>-repodata (zstd, index.plist,
// index-meta.plist, empty stage.plist) as xbps-rindex writes it.
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
		sum := sha256.Sum256(data)
		if r.Key != nil && !r.Unsigned[props["pkgname"].(string)] {
			sig, err := rsa.SignPKCS1v15(rand.Reader, r.Key, crypto.SHA256, sum[:])
			if err != nil {
				return err
			}
			if err := os.WriteFile(file+".sig2", sig, 0o644); err != nil {
				return err
			}
		}
		entry := map[string]any{}
		for k, v := range props {
			entry[k] = v
		}
		delete(entry, "pkgname")
		delete(entry, "version")
		delete(entry, "packaged-with")
		entry["filename-sha256"] = hex.EncodeToString(sum[:])
		entry["filename-size"] = uint64(len(data))
		index[props["pkgname"].(string)] = entry
	}
	return r.WriteRepodata(index)
}

// WriteRepodata writes <arch>-repodata for an index dictionary.
func (r Repo) WriteRepodata(index map[string]any) error {
	idx, err := proplib.Marshal(index)
	if err != nil {
		return err
	}
	var meta []byte
	if r.Key != nil {
		der, _ := x509.MarshalPKIXPublicKey(&r.Key.PublicKey)
		pemText := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		meta, err = proplib.Marshal(map[string]any{
			"public-key": pemText, "public-key-size": uint64(r.Key.N.BitLen()),
			"signature-by": r.signer(), "signature-type": "rsa",
		})
		if err != nil {
			return err
		}
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, m := range []struct {
		name string
		data []byte
	}{{"index.plist", idx}, {"index-meta.plist", meta}, {"stage.plist", nil}} {
		tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), ModTime: Epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX})
		tw.Write(m.data)
	}
	tw.Close()
	var out bytes.Buffer
	zw, _ := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
	zw.Write(tarBuf.Bytes())
	zw.Close()
	return os.WriteFile(filepath.Join(r.Dir, r.Arch+"-repodata"), out.Bytes(), 0o644)
}

// Fingerprint is the xbps fingerprint of the repository key.
func (r Repo) Fingerprint() string { return xbps.Fingerprint(&r.Key.PublicKey) }

func setList(d map[string]any, k string, l []string) {
	if len(l) > 0 {
		d[k] = toAny(l)
	}
}

func toAny(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
