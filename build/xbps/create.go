package xbps

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/xbps/proplib"
)

// Script is an INSTALL or REMOVE script, with the mode its file had.
type Script struct {
	Data []byte
	Mode int64
}

// NewPackage is what xbps-create is told about a package: its props.plist keys (the names in the
// comments), its scripts and its payload. Lists are written in their order; empty ones are left out,
// as xbps-create leaves out empty options.
type NewPackage struct {
	Pkgver       string // pkgver, and pkgname and version from it: "name-version_revision"
	Arch         string // architecture: x86_64, x86_64-musl, aarch64, noarch, ...
	ShortDesc    string // short_desc: required
	LongDesc     string // long_desc
	Homepage     string // homepage
	License      string // license
	Maintainer   string // maintainer
	PackagedWith string // packaged-with (xbps-create -B); xbps-rindex leaves it out of the index
	RunDepends   []string
	ConfFiles    []string // conf_files: absolute paths of regular files of the payload
	Conflicts    []string
	Provides     []string // provides: pkgvers ("name-version_revision")
	Replaces     []string
	Reverts      []string // reverts: versions this one replaces although they are newer ("1.2_1")
	// ShlibProvides and ShlibRequires (shlib-provides, shlib-requires) are shared library sonames
	// ("libc.so.6") the package provides and needs; xbps-src finds them, xbps-create is told.
	ShlibProvides, ShlibRequires []string
	// Alternatives maps a group to its "linkpath:target" entries.
	Alternatives map[string][]string
	// InstallMsg and RemoveMsg (install-msg, remove-msg) are shown when it is installed or removed.
	InstallMsg, RemoveMsg []byte
	Install, Remove       *Script // nil: none
	// Payload is the payload in xbps-create's order, as ReadPayload lists it.
	Payload []PayloadEntry
	// ModTime is every script's and payload entry's modification time: xbps-create copies each
	// file's own, so xbps-src sets them all to SOURCE_DATE_EPOCH first. The plists get 0, as there.
	ModTime time.Time
}

// Name is the file name xbps-create gives the package: "<pkgver>.<arch>.xbps".
func (p *NewPackage) Name() string { return p.Pkgver + "." + p.Arch + ".xbps" }

// check refuses what xbps-create would refuse or silently mangle.
func (p *NewPackage) check() error {
	if _, _, ok := SplitPkgver(p.Pkgver); !ok {
		return fmt.Errorf("pkgver %q: want name-version_revision, e.g. foo-1.0_1", p.Pkgver)
	}
	if err := ident.Name("pkgver", p.Pkgver); err != nil {
		return err
	}
	if err := ident.Name("architecture", p.Arch); err != nil {
		return err
	}
	if strings.TrimSpace(p.ShortDesc) == "" {
		return errors.New("short_desc is empty: every package needs a one-line description")
	}
	for _, l := range []struct {
		key   string
		items []string
	}{{"run_depends", p.RunDepends}, {"conf_files", p.ConfFiles}, {"conflicts", p.Conflicts}, {"provides", p.Provides},
		{"replaces", p.Replaces}, {"reverts", p.Reverts}, {"shlib-provides", p.ShlibProvides}, {"shlib-requires", p.ShlibRequires}} {
		for _, s := range l.items {
			// xbps-create takes each list as one blank-separated argument.
			if s == "" || strings.ContainsAny(s, " \t\n\x00") {
				return fmt.Errorf("%s: %q: an entry must be one word, without blanks", l.key, s)
			}
			if l.key == "provides" {
				if _, _, ok := SplitPkgver(s); !ok {
					return fmt.Errorf("provides: %q is not a pkgver: write name-version_revision, e.g. %s-1.0_1", s, s)
				}
			}
		}
	}
	for _, c := range p.ConfFiles {
		if !slices.ContainsFunc(p.Payload, func(e PayloadEntry) bool { return e.Kind == KindFile && e.Path == "."+c }) {
			return fmt.Errorf("conf_files: %s is not a regular file of the payload (write the absolute path it installs to, e.g. /etc/foo.conf)", c)
		}
	}
	for g, entries := range p.Alternatives {
		if g == "" || strings.ContainsAny(g, ": \t\n\x00") {
			return fmt.Errorf("alternatives: group %q: one word without ':'", g)
		}
		for _, a := range entries {
			link, target, ok := strings.Cut(a, ":")
			if !ok || link == "" || target == "" || strings.ContainsAny(a, " \t\n\x00") {
				return fmt.Errorf("alternatives: %s: %q: write \"linkpath:target\", e.g. \"/usr/bin/vi:/usr/bin/nvi\"", g, a)
			}
		}
	}
	return nil
}

// Props is the package's props.plist dictionary, with installed_size: what its regular files take,
// each hard-linked file once.
func (p *NewPackage) Props() (map[string]any, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	name, version, _ := SplitPkgver(p.Pkgver)
	d := map[string]any{"architecture": p.Arch, "pkgname": name, "version": version, "pkgver": p.Pkgver, "short_desc": p.ShortDesc}
	for k, v := range map[string]string{"homepage": p.Homepage, "license": p.License, "maintainer": p.Maintainer,
		"long_desc": p.LongDesc, "packaged-with": p.PackagedWith} {
		if v != "" {
			d[k] = v
		}
	}
	for k, v := range map[string][]string{"run_depends": p.RunDepends, "conf_files": p.ConfFiles, "conflicts": p.Conflicts,
		"provides": p.Provides, "replaces": p.Replaces, "reverts": p.Reverts, "shlib-provides": p.ShlibProvides,
		"shlib-requires": p.ShlibRequires} {
		if len(v) > 0 {
			d[k] = slices.Clone(v)
		}
	}
	if len(p.Alternatives) > 0 {
		alts := map[string]any{}
		for g, l := range p.Alternatives {
			alts[g] = slices.Clone(l)
		}
		d["alternatives"] = alts
	}
	for k, v := range map[string][]byte{"install-msg": p.InstallMsg, "remove-msg": p.RemoveMsg} {
		if len(v) > 0 {
			d[k] = v
		}
	}
	var size uint64
	seen := map[FileID]bool{}
	for _, e := range p.Payload {
		if e.Kind != KindFile || (e.ID != FileID{} && seen[e.ID]) {
			continue
		}
		seen[e.ID] = true
		size += uint64(e.Size)
	}
	d["installed_size"] = size
	return d, nil
}

// FilesPlist is the package's files.plist dictionary: files, conf_files, links and dirs, each in the
// payload's reverse order (each folder before its contents, names ascending).
func (p *NewPackage) FilesPlist() map[string]any {
	lists := map[string][]any{}
	for _, e := range slices.Backward(p.Payload) {
		d := map[string]any{"file": e.Path[1:]}
		key := "dirs"
		switch e.Kind {
		case KindLink:
			key, d["target"] = "links", e.Target
		case KindFile:
			key, d["sha256"] = "files", e.SHA256
			if slices.Contains(p.ConfFiles, e.Path[1:]) {
				key = "conf_files"
			}
			if e.Size > 0 {
				d["size"] = uint64(e.Size)
			}
		}
		lists[key] = append(lists[key], d)
	}
	out := map[string]any{}
	for k, v := range lists {
		out[k] = v
	}
	return out
}

// WritePackage writes the package as xbps-create writes it: a tar (see WritePackageTar) compressed
// with zstd at level 9, its default. The zstd stream is not libzstd's byte for byte; what it holds is.
func WritePackage(w io.Writer, p *NewPackage) error {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(9)), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	if err := WritePackageTar(tw, p); err != nil {
		zw.Close()
		return err
	}
	if err := tw.Close(); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

// WritePackageTar writes the package's entries to tw and leaves it open: ./REMOVE and ./INSTALL
// (in that order, xbps-create's), ./props.plist, ./files.plist, then the payload without folders,
// in ReadPayload's order, the first of each set of hard links with the data and the others as links
// to it (libarchive's linkify). Every entry is root's, with the payload's modes.
func WritePackageTar(tw *tar.Writer, p *NewPackage) error {
	props, err := p.Props()
	if err != nil {
		return err
	}
	propsXML, err := proplib.Marshal(props)
	if err != nil {
		return fmt.Errorf("props.plist: %w", err)
	}
	filesXML, err := proplib.Marshal(p.FilesPlist())
	if err != nil {
		return fmt.Errorf("files.plist: %w", err)
	}
	mtime := time.Unix(p.ModTime.Unix(), 0) // the archive keeps seconds
	for _, s := range []struct {
		name   string
		script *Script
	}{{"./REMOVE", p.Remove}, {"./INSTALL", p.Install}} {
		if s.script != nil {
			if err := writeTarFile(tw, &tar.Header{Name: s.name, Mode: s.script.Mode, ModTime: mtime}, s.script.Data); err != nil {
				return err
			}
		}
	}
	for _, m := range []struct {
		name string
		data []byte
	}{{"./props.plist", propsXML}, {"./files.plist", filesXML}} {
		if err := writeTarFile(tw, &tar.Header{Name: m.name, Mode: 0o644, ModTime: time.Unix(0, 0)}, m.data); err != nil {
			return err
		}
	}
	first := map[FileID]string{}
	for _, e := range p.Payload {
		h := &tar.Header{Name: e.Path, Mode: e.Mode, ModTime: mtime, Uname: "root", Gname: "root"}
		switch {
		case e.Kind == KindDir:
			continue
		case e.Kind == KindLink:
			h.Typeflag, h.Linkname = tar.TypeSymlink, e.Link
		case e.ID != FileID{} && first[e.ID] != "":
			h.Typeflag, h.Linkname = tar.TypeLink, first[e.ID]
		default:
			if e.ID != (FileID{}) {
				first[e.ID] = e.Path
			}
			if err := writePayloadFile(tw, h, e); err != nil {
				return err
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	return nil
}

// writeTarFile writes a regular file entry owned by root.
func writeTarFile(tw *tar.Writer, h *tar.Header, data []byte) error {
	h.Typeflag, h.Size, h.Uname, h.Gname = tar.TypeReg, int64(len(data)), "root", "root"
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	_, err := tw.Write(data)
	return err
}

// writePayloadFile copies a regular file into the archive and checks that it is still the file
// ReadPayload hashed.
func writePayloadFile(tw *tar.Writer, h *tar.Header, e PayloadEntry) error {
	h.Typeflag, h.Size = tar.TypeReg, e.Size
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	if e.Size == 0 && e.Open == nil {
		return nil
	}
	f, err := e.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	hash := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, hash), io.LimitReader(f, e.Size))
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	more, _ := f.Read(make([]byte, 1))
	if n != e.Size || more > 0 || hex.EncodeToString(hash.Sum(nil)) != e.SHA256 {
		return fmt.Errorf("%s changed while it was packaged: package it again", e.Path)
	}
	return nil
}
