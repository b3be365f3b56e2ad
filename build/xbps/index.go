package xbps

import (
	"archive/tar"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/untar"
	"github.com/simple-uml/simple-uml/build/xbps/proplib"
)

// IndexEntry reads a .xbps package and returns its repository index entry, as xbps-rindex -a makes
// it (bin/xbps-rindex/index-add.c): its props.plist without pkgname, version and packaged-with, plus
// filename-sha256 and filename-size of the whole file.
func IndexEntry(r io.Reader) (map[string]any, error) {
	h := sha256.New()
	var size int64
	counted := io.TeeReader(r, writerFunc(func(b []byte) (int, error) {
		size += int64(len(b))
		return h.Write(b)
	}))
	props, err := readProps(counted)
	if err != nil {
		return nil, err
	}
	// What the decompressor has not read yet is hashed too: the digest is the whole file's.
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return nil, err
	}
	p, err := PackageFromProps(props)
	if err != nil {
		return nil, fmt.Errorf("props.plist: %w", err)
	}
	if err := ident.Name("architecture", p.Arch); err != nil {
		return nil, fmt.Errorf("props.plist: %w", err)
	}
	delete(props, "pkgname")
	delete(props, "version")
	delete(props, "packaged-with")
	props["filename-sha256"] = hex.EncodeToString(h.Sum(nil))
	props["filename-size"] = uint64(size)
	return props, nil
}

// readProps returns the props.plist of a package stream, reading no further than it.
func readProps(r io.Reader) (map[string]any, error) {
	dr, _, closer, err := Decompress(r)
	if err != nil {
		return nil, err
	}
	defer closer()
	tr := tar.NewReader(dr)
	var entries untar.Counter
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("no ./props.plist: not an xbps package")
		}
		if err != nil {
			return nil, fmt.Errorf("reading package: %w", err)
		}
		if err := entries.Next("the package"); err != nil {
			return nil, err
		}
		if hdr.Name != "./props.plist" {
			continue
		}
		if hdr.Size > maxMeta {
			return nil, fmt.Errorf("props.plist is %d bytes", hdr.Size)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("reading props.plist: %w", err)
		}
		props, err := decodeDict(data)
		if err != nil {
			return nil, fmt.Errorf("props.plist: %w", err)
		}
		return props, nil
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// Index is a repository index for one architecture as xbps-rindex -a builds it: a dictionary from
// package name to index entry, holding the newest version of each name.
type Index struct {
	Arch    string
	Entries map[string]any
}

// NewIndex starts an empty index for arch (x86_64, x86_64-musl, aarch64, ...).
func NewIndex(arch string) *Index { return &Index{Arch: arch, Entries: map[string]any{}} }

// Add offers an index entry (see IndexEntry). It is kept, and true returned, when its architecture
// is the index's or noarch and no entry of that name is as new: a version equal to the one kept is
// "already registered", and a package whose reverts list holds the other's version counts as the
// newer one, as xbps-rindex decides.
func (ix *Index) Add(entry map[string]any) (bool, error) {
	p, err := PackageFromProps(entry)
	if err != nil {
		return false, err
	}
	if p.Arch != ix.Arch && p.Arch != "noarch" {
		return false, nil
	}
	if cur, ok := ix.Entries[p.Name].(map[string]any); ok {
		old, err := PackageFromProps(cur)
		if err != nil {
			return false, err
		}
		cmp := CompareVersions(p.Version, old.Version)
		switch {
		case cmp < 0 && slices.Contains(strs(entry, "reverts"), old.Version):
			cmp = 1
		case cmp > 0 && slices.Contains(strs(cur, "reverts"), p.Version):
			cmp = -1
		}
		if cmp <= 0 {
			return false, nil
		}
	}
	ix.Entries[p.Name] = entry
	return true, nil
}

// SignedMeta is the index-meta.plist xbps-rindex --sign writes for a key: the public key as PEM
// (SubjectPublicKeyInfo), its size in bits, the signer's name and "rsa".
func SignedMeta(pub *rsa.PublicKey, signedBy string) (map[string]any, error) {
	if signedBy == "" {
		return nil, errors.New("no signer's name: xbps-rindex --sign needs --signedby \"Name <email>\"")
	}
	pemText, err := PublicKeyPEM(pub)
	if err != nil {
		return nil, err
	}
	return map[string]any{"public-key": pemText, "public-key-size": uint64(pub.Size() * 8), "signature-by": signedBy, "signature-type": "rsa"}, nil
}

// WriteRepodata writes an <arch>-repodata as xbps-rindex writes it (bin/xbps-rindex/repoflush.c):
// a zstd-compressed (level 9) tar of index.plist, index-meta.plist and stage.plist, each root's with
// mode 0644 and time 0, an empty dictionary written as an empty member. meta is nil for an unsigned
// repository; the stage is always empty, as it is after xbps-rindex -a adds packages that break no
// other package's shared libraries (the only case it keeps them apart).
func WriteRepodata(w io.Writer, index, meta map[string]any) error {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(9)), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, m := range []struct {
		name string
		dict map[string]any
	}{{"index.plist", index}, {"index-meta.plist", meta}, {"stage.plist", nil}} {
		var data []byte
		if len(m.dict) > 0 {
			if data, err = proplib.Marshal(m.dict); err != nil {
				zw.Close()
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
		if err := writeTarFile(tw, &tar.Header{Name: m.name, Mode: 0o644, ModTime: time.Unix(0, 0)}, data); err != nil {
			zw.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}
