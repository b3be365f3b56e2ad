package xbps

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"crypto/md5"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/untar"
	"github.com/simple-uml/simple-uml/build/xbps/proplib"
)

// Package is one index entry (or a package's props.plist): typed fields for what the build uses,
// and Props, the whole dictionary, for xbps's own database.
type Package struct {
	Pkgver         string
	Name           string
	Version        string
	Arch           string
	ShortDesc      string
	License        string
	Homepage       string
	InstalledSize  uint64
	FilenameSHA256 string
	FilenameSize   uint64
	RunDepends     []string
	ShlibRequires  []string
	ShlibProvides  []string
	Provides       []string
	Replaces       []string
	Conflicts      []string
	ConfFiles      []string
	// Alternatives maps a group to "linkpath:target" entries.
	Alternatives map[string][]string
	Props        map[string]any
}

// Meta is index-meta.plist: the repository's public key when it is signed.
type Meta struct {
	PublicKeyPEM  []byte
	PublicKeySize uint64
	SignatureBy   string
	SignatureType string
}

// Repodata is a parsed <arch>-repodata file.
type Repodata struct {
	Index map[string]*Package
	// Meta is nil for an unsigned repository (empty member or the legacy DEADBEEF).
	Meta *Meta
	// Stage is stage.plist; remote clients ignore it unless staging is asked for.
	Stage       map[string]*Package
	Compression string
	// Members are the archive's member names in order: xbps-rindex writes index.plist,
	// index-meta.plist and stage.plist.
	Members []string
}

// Signed reports whether the repository carries a public key.
func (r *Repodata) Signed() bool { return r.Meta != nil }

// maxMember bounds a repodata member: Void's whole x86_64 index is about 20 MB of plist.
const maxMember = 512 << 20

// maxMembers bounds a repodata archive's members.
const maxMembers = 64

// Decompress detects the compression of an xbps archive (repodata or package) by its magic bytes
// and returns the decompressed stream and the name of the compression.
func Decompress(r io.Reader) (io.Reader, string, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(6)
	nop := func() {}
	switch {
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, "", nop, fmt.Errorf("zstd: %w", err)
		}
		return d, "zstd", d.Close, nil
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		d, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", nop, fmt.Errorf("gzip: %w", err)
		}
		return d, "gzip", nop, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		d, err := xz.NewReader(br)
		if err != nil {
			return nil, "", nop, fmt.Errorf("xz: %w", err)
		}
		return d, "xz", nop, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), "bzip2", nop, nil
	case bytes.HasPrefix(magic, []byte{0x04, 0x22, 0x4d, 0x18}):
		return nil, "", nop, errors.New("lz4 compression is not supported; recompress the repository with zstd (xbps-rindex's default)")
	}
	return br, "none", nop, nil
}

// ReadRepodata parses an <arch>-repodata stream in any compression xbps writes.
func ReadRepodata(r io.Reader) (*Repodata, error) {
	dr, comp, closer, err := Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("repodata: %w", err)
	}
	defer closer()
	rd := &Repodata{Compression: comp}
	tr := tar.NewReader(dr)
	seenIndex := false
	for members := 1; ; members++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("repodata (%s): %w", comp, err)
		}
		if members > maxMembers {
			return nil, fmt.Errorf("repodata: more than %d members; xbps-rindex writes three", maxMembers)
		}
		if hdr.Size > maxMember {
			return nil, fmt.Errorf("repodata: member %s is %d bytes, larger than any real index", hdr.Name, hdr.Size)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("repodata: %s: %w", hdr.Name, err)
		}
		rd.Members = append(rd.Members, hdr.Name)
		switch strings.TrimPrefix(hdr.Name, "./") {
		case "index.plist":
			if rd.Index, err = parseIndex(data); err != nil {
				return nil, fmt.Errorf("repodata: index.plist: %w", err)
			}
			seenIndex = true
		case "index-meta.plist":
			if rd.Meta, err = parseMeta(data); err != nil {
				return nil, fmt.Errorf("repodata: index-meta.plist: %w", err)
			}
		case "stage.plist":
			if rd.Stage, err = parseIndex(data); err != nil {
				return nil, fmt.Errorf("repodata: stage.plist: %w", err)
			}
		}
	}
	if err := untar.CheckEnd(dr); err != nil {
		return nil, fmt.Errorf("repodata (%s): %w", comp, err)
	}
	if !seenIndex {
		return nil, errors.New("repodata: no index.plist member (is this an xbps repository?)")
	}
	return rd, nil
}

// decodeDict reads a plist whose top level is a dictionary, as strictly as xbps reads it: what xbps
// would refuse (a numeric entity, an unknown element) is refused here too.
func decodeDict(data []byte) (map[string]any, error) {
	v, err := proplib.Unmarshal(data)
	if err != nil {
		return nil, err
	}
	d, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("top level is %T, not a dictionary", v)
	}
	return d, nil
}

func parseIndex(data []byte) (map[string]*Package, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]*Package{}, nil
	}
	d, err := decodeDict(data)
	if err != nil {
		return nil, err
	}
	idx := make(map[string]*Package, len(d))
	for name, v := range d {
		props, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("entry %q is %T, not a dictionary", name, v)
		}
		p, err := PackageFromProps(props)
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", name, err)
		}
		if p.Name != name {
			return nil, fmt.Errorf("entry %q holds pkgver %q of another package", name, p.Pkgver)
		}
		// The index is not signed: what becomes a file name or a cache path is checked here.
		if err := ident.SHA256(p.FilenameSHA256); err != nil {
			return nil, fmt.Errorf("entry %q: filename-sha256: %w", name, err)
		}
		if err := ident.Name("architecture", p.Arch); err != nil {
			return nil, fmt.Errorf("entry %q: %w", name, err)
		}
		idx[name] = p
	}
	return idx, nil
}

// PackageFromProps reads the typed fields of an index entry or props.plist dictionary.
func PackageFromProps(props map[string]any) (*Package, error) {
	p := &Package{Props: props}
	p.Pkgver = str(props, "pkgver")
	var ok bool
	if err := ident.Name("pkgver", p.Pkgver); err != nil {
		return nil, err
	}
	if p.Name, p.Version, ok = SplitPkgver(p.Pkgver); !ok {
		return nil, fmt.Errorf("bad pkgver %q: want name-version_revision", p.Pkgver)
	}
	p.Arch = str(props, "architecture")
	p.ShortDesc = str(props, "short_desc")
	p.License = str(props, "license")
	p.Homepage = str(props, "homepage")
	p.FilenameSHA256 = str(props, "filename-sha256")
	p.InstalledSize = num(props, "installed_size")
	p.FilenameSize = num(props, "filename-size")
	p.RunDepends = strs(props, "run_depends")
	p.ShlibRequires = strs(props, "shlib-requires")
	p.ShlibProvides = strs(props, "shlib-provides")
	p.Provides = strs(props, "provides")
	p.Replaces = strs(props, "replaces")
	p.Conflicts = strs(props, "conflicts")
	p.ConfFiles = strs(props, "conf_files")
	if alts, ok := props["alternatives"].(map[string]any); ok {
		p.Alternatives = map[string][]string{}
		for g := range alts {
			p.Alternatives[g] = strs(alts, g)
		}
	}
	return p, nil
}

func str(d map[string]any, k string) string {
	s, _ := d[k].(string)
	return s
}

func num(d map[string]any, k string) uint64 {
	switch v := d[k].(type) {
	case uint64:
		return v
	case int64:
		if v >= 0 {
			return uint64(v)
		}
	}
	return 0
}

func strs(d map[string]any, k string) []string {
	a, _ := d[k].([]any)
	var out []string
	for _, v := range a {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func parseMeta(data []byte) (*Meta, error) {
	t := bytes.TrimSpace(data)
	if len(t) == 0 || string(t) == "DEADBEEF" {
		return nil, nil // unsigned
	}
	d, err := decodeDict(data)
	if err != nil {
		return nil, err
	}
	m := &Meta{SignatureBy: str(d, "signature-by"), SignatureType: str(d, "signature-type"), PublicKeySize: num(d, "public-key-size")}
	m.PublicKeyPEM, _ = d["public-key"].([]byte)
	if len(m.PublicKeyPEM) == 0 {
		return nil, errors.New("no public-key")
	}
	if m.SignatureType != "" && m.SignatureType != "rsa" {
		return nil, fmt.Errorf("signature-type %q is not rsa", m.SignatureType)
	}
	return m, nil
}

// ParsePublicKey reads the PEM public key xbps stores (SubjectPublicKeyInfo, or PKCS#1).
func ParsePublicKey(pemText []byte) (*rsa.PublicKey, error) {
	blk, _ := pem.Decode(pemText)
	if blk == nil {
		return nil, errors.New("public key: no PEM block")
	}
	if k, err := x509.ParsePKIXPublicKey(blk.Bytes); err == nil {
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is %T, not RSA", k)
		}
		return rk, nil
	}
	k, err := x509.ParsePKCS1PublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return k, nil
}

// Fingerprint is xbps's key fingerprint: MD5 of the OpenSSH "ssh-rsa" wire blob, colon-separated hex.
func Fingerprint(k *rsa.PublicKey) string {
	var blob bytes.Buffer
	writeString := func(b []byte) {
		binary.Write(&blob, binary.BigEndian, uint32(len(b)))
		blob.Write(b)
	}
	mpint := func(n *big.Int) []byte {
		b := n.Bytes()
		if len(b) > 0 && b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return b
	}
	writeString([]byte("ssh-rsa"))
	writeString(mpint(big.NewInt(int64(k.E))))
	writeString(mpint(k.N))
	sum := md5.Sum(blob.Bytes())
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(parts, ":")
}

// NormalizeFingerprint lowercases a fingerprint and accepts it with or without colons.
func NormalizeFingerprint(fp string) string {
	fp = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(fp), ":", ""))
	var parts []string
	for i := 0; i+2 <= len(fp); i += 2 {
		parts = append(parts, fp[i:i+2])
	}
	return strings.Join(parts, ":")
}

// Names returns the index's package names, sorted.
func Names(idx map[string]*Package) []string {
	out := make([]string, 0, len(idx))
	for n := range idx {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
