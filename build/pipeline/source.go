package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/kernelorg"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// kernelSource is where the kernel tarball comes from and the digest it must have.
type kernelSource struct {
	version string // empty for a local tarball until it is unpacked
	sha256  string
	url     string // download address; empty for a local tarball
	local   string // local tarball path
	display string // for the record
}

func (s kernelSource) fetch(ctx context.Context, cache *fetch.Cache) (string, error) {
	if s.local != "" {
		return s.local, nil
	}
	return cache.File(ctx, s.url, s.sha256)
}

// resolveSource finds the tarball and the sha256 it must have: the pin in kernel.lock, or else the line
// in kernel.org's sha256sums.asc after its signature verified against a pinned key. A digest verified
// from a signed list is remembered, so reruns work offline.
func resolveSource(ctx context.Context, cfg config.Config, cache *fetch.Cache, w io.Writer) (kernelSource, error) {
	if cfg.Kernel.Tarball != "" {
		sum, err := localSHA256(cfg.Kernel.Tarball, filepath.Join(cfg.Paths.Cache, "verified"))
		if err != nil {
			return kernelSource{}, fmt.Errorf("local kernel tarball (kernel.tarball / SUML_KERNEL_TARBALL): %w", err)
		}
		return kernelSource{sha256: sum, local: cfg.Kernel.Tarball, display: "local:" + filepath.Base(cfg.Kernel.Tarball)}, nil
	}
	version := cfg.Pin.Version
	if version == "" && cfg.Kernel.Series != cfg.DefaultSeries {
		return kernelSource{}, fmt.Errorf("%s pins no %s kernel: pin one with `go tool mage bump -series=%s`", config.LockName, cfg.Kernel.Series, cfg.Kernel.Series)
	}
	if _, _, err := kernelorg.ParseVersion(version); err != nil {
		return kernelSource{}, fmt.Errorf("%s: %w", config.LockName, err)
	}
	src := kernelSource{version: version, url: kernelorg.TarballURL(cfg.Kernel.Mirror, version)}
	src.display = src.url
	if cfg.Pin.SHA256 != "" {
		src.sha256 = strings.ToLower(cfg.Pin.SHA256)
		return src, nil
	}
	name := kernelorg.TarballName(version)
	remembered := filepath.Join(cfg.Paths.Cache, "verified", name+".sha256")
	if data, err := os.ReadFile(remembered); err == nil && len(strings.TrimSpace(string(data))) == 64 {
		src.sha256 = strings.TrimSpace(string(data))
		return src, nil
	}
	sum, err := SignedSHA256(ctx, cfg, cache, version)
	if err != nil {
		return kernelSource{}, err
	}
	fmt.Fprintf(w, "%s: sha256 %s, from kernel.org's signed sha256sums.asc\n", name, sum)
	if err := os.MkdirAll(filepath.Dir(remembered), 0o755); err != nil {
		return kernelSource{}, err
	}
	if err := files.WriteBytes(remembered, []byte(sum+"\n"), 0o644); err != nil {
		return kernelSource{}, err
	}
	src.sha256 = sum
	return src, nil
}

// SignedSHA256 downloads the sha256sums.asc of a version's directory, verifies its signature against
// the configured keys trusted by fingerprint, and returns the tarball's line.
func SignedSHA256(ctx context.Context, cfg config.Config, cache *fetch.Cache, version string) (string, error) {
	keyring, err := trustedKeys(ctx, cfg, cache)
	if err != nil {
		return "", err
	}
	sumsURL := kernelorg.SumsURL(cfg.Kernel.Mirror, version)
	asc, err := cache.Bytes(ctx, sumsURL, 16<<20)
	if err != nil {
		return "", err
	}
	sums, _, err := kernelorg.VerifySums(asc, keyring)
	if err != nil {
		return "", fmt.Errorf("%s: %w", sumsURL, err)
	}
	sum, err := sums.Lookup(kernelorg.TarballName(version))
	if err != nil {
		if errors.Is(err, kernelorg.ErrNotListed) {
			return "", fmt.Errorf("%s: %w", sumsURL, err)
		}
		return "", err
	}
	return sum, nil
}

func trustedKeys(ctx context.Context, cfg config.Config, cache *fetch.Cache) (openpgp.EntityList, error) {
	var all [][]byte
	for _, src := range cfg.Kernel.Keys {
		data, err := cache.Bytes(ctx, src, 1<<20)
		if err != nil {
			return nil, fmt.Errorf("read kernel.org keys from %s (kernel.keys): %w", src, err)
		}
		all = append(all, data)
	}
	return kernelorg.TrustedKeys(cfg.Kernel.TrustedKeys, all...)
}

// fileStamp identifies a file's content cheaply, as git's index does: a rewritten file gets a new
// modification time, size or inode.
type fileStamp struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	Inode   uint64 `json:"inode"`
	SHA256  string `json:"sha256"`
}

// localSHA256 hashes a local tarball, remembering the digest against the file's stamp in dir so that
// an unchanged 150 MB tarball is not read again on every run.
func localSHA256(path, dir string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	stamp := fileStamp{Path: path, Size: fi.Size(), ModTime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		stamp.Inode = st.Ino
	}
	memo := filepath.Join(dir, "local-"+manifest.HashJSON(path)[:16]+".json")
	var known fileStamp
	if data, err := os.ReadFile(memo); err == nil && json.Unmarshal(data, &known) == nil {
		if sum := known.SHA256; len(sum) == 64 {
			known.SHA256 = ""
			if known == stamp {
				return sum, nil
			}
		}
	}
	sum, err := fetch.FileSHA256(path)
	if err != nil {
		return "", err
	}
	stamp.SHA256 = sum
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = files.WriteJSON(memo, stamp) // only a shortcut: failing to remember is not an error
	}
	return sum, nil
}
