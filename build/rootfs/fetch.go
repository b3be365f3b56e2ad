package rootfs

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/ui"
	"github.com/simple-uml/simple-uml/build/xbps"
)

// Repo is a recipe repository with its index read and its key checked against the recipe.
type Repo struct {
	Repository
	Index          *xbps.Repo
	Key            *rsa.PublicKey // nil for an unsigned repository the recipe allows
	Fingerprint    string
	RepodataSHA256 string
}

// maxRepodata bounds a repodata download; Void's largest is about 2 MB compressed.
const maxRepodata = 256 << 20

// LoadRepositories reads each repository's <arch>-repodata (URL or local folder) and checks that
// its key is one the recipe trusts.
func LoadRepositories(ctx context.Context, cache *fetch.Cache, r *Recipe) ([]*Repo, error) {
	var out []*Repo
	for _, rr := range r.Repositories {
		src := rr.URL + "/" + r.Arch + "-repodata"
		data, err := cache.Bytes(ctx, src, maxRepodata)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", rr.URL, err)
		}
		rd, err := xbps.ReadRepodata(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", src, err)
		}
		repo := &Repo{Repository: rr, Index: &xbps.Repo{URL: rr.URL, Data: rd}, RepodataSHA256: digest.Bytes(data)}
		if rd.Signed() {
			key, err := xbps.ParsePublicKey(rd.Meta.PublicKeyPEM)
			if err != nil {
				return nil, fmt.Errorf("repository %s: %w", rr.URL, err)
			}
			repo.Key, repo.Fingerprint = key, xbps.Fingerprint(key)
			if !slices.Contains(rr.Keys, repo.Fingerprint) {
				return nil, fmt.Errorf("repository %s is signed by key %s (%q), which the recipe does not trust: "+
					"if you trust it, add it to that repository's keys in %s", rr.URL, repo.Fingerprint, rd.Meta.SignatureBy, r.Path)
			}
		} else if !rr.AllowUnsigned {
			// The recipe pins a key (validate requires it without allow_unsigned): the index is not
			// what was pinned, so "allow unsigned" is not the fix to suggest.
			return nil, fmt.Errorf("repository %s carries no signature data (its repodata holds %s; xbps-rindex writes index.plist, "+
				"index-meta.plist and stage.plist), yet %s trusts it only signed by %s: the index was cut short or replaced by an "+
				"unsigned one; fetch it again, or ask its owner", rr.URL, strings.Join(rd.Members, ", "), r.Path, strings.Join(rr.Keys, ", "))
		}
		out = append(out, repo)
	}
	return out, nil
}

// Resolve picks the recipe's packages and their dependencies from the repositories, in order, and
// checks that every shared library a package needs is provided by one of them.
func Resolve(repos []*Repo, r *Recipe) ([]*xbps.Resolved, error) {
	idx := make([]*xbps.Repo, len(repos))
	for i, rp := range repos {
		idx[i] = rp.Index
	}
	pkgs, err := xbps.Resolve(idx, r.Packages)
	if err != nil {
		return nil, err
	}
	if missing := xbps.MissingShlibs(pkgs); len(missing) > 0 {
		var libs []string
		for lib, by := range missing {
			libs = append(libs, fmt.Sprintf("%s (needed by %s)", lib, strings.Join(by, ", ")))
		}
		sort.Strings(libs)
		return nil, fmt.Errorf("no package provides the shared libraries %s: add the package that provides them to the recipe",
			strings.Join(libs, "; "))
	}
	return pkgs, nil
}

// Fetched is a downloaded and verified package.
type Fetched struct {
	*xbps.Resolved
	Path   string
	SHA256 string
	Size   int64
	// Verified says what was checked: "sig2", "sig" (legacy) or "sha256" (unsigned repository).
	Verified string
}

// Fetch downloads the packages into the content-addressed cache, n at a time, and verifies each
// against its index entry and signature. It fails on the first bad package, naming it.
func Fetch(ctx context.Context, cache *fetch.Cache, repos []*Repo, pkgs []*xbps.Resolved, n int) ([]*Fetched, error) {
	byIndex := map[*xbps.Repo]*Repo{}
	for _, r := range repos {
		byIndex[r.Index] = r
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]*Fetched, len(pkgs))
	var total int64
	for _, p := range pkgs {
		total += int64(p.FilenameSize)
	}
	progress := ui.NewProgress(fmt.Sprintf("packages (%d)", len(pkgs)))
	defer progress.Done()
	var (
		mu       sync.Mutex
		done     int64
		firstErr error
		wg       sync.WaitGroup
	)
	sem := make(chan struct{}, max(n, 1))
	for i, p := range pkgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			f, err := fetchOne(ctx, cache, byIndex[p.Repo], p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			out[i] = f
			done += f.Size
			progress.Update(done, total)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func fetchOne(ctx context.Context, cache *fetch.Cache, repo *Repo, p *xbps.Resolved) (*Fetched, error) {
	src := repo.URL + "/" + p.Pkgver + "." + p.Arch + ".xbps"
	var (
		path string
		sum  []byte
		size int64
		err  error
	)
	if fetch.IsURL(src) {
		if path, err = cache.File(ctx, src, p.FilenameSHA256); err != nil {
			var mm *fetch.MismatchError
			if errors.As(err, &mm) {
				return nil, &xbps.PackageError{Pkgver: p.Pkgver, Err: fmt.Errorf("sha256 %s differs from the index's %s (%s): tampered or corrupt download, deleted", mm.Got, mm.Want, src)}
			}
			return nil, fmt.Errorf("download %s: %w", p.Pkgver, err)
		}
		// The cache has just checked the file against the index's digest; only the size is left.
		fi, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		sum, _ = hex.DecodeString(p.FilenameSHA256)
		size = fi.Size()
	} else {
		// A local repository's file is read in place and hashed here.
		path = strings.TrimPrefix(src, "file://")
		if sum, size, err = hashFile(path); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Pkgver, err)
		}
	}
	var sigs xbps.Signatures
	verified := "sha256"
	if repo.Key != nil {
		if sigs.Sig2, err = optional(cache.Bytes(ctx, src+".sig2", 4096)); err != nil {
			return nil, fmt.Errorf("%s: signature: %w", p.Pkgver, err)
		}
		verified = "sig2"
		// Without a .sig2, a legacy .sig is fetched even when the policy refuses it, so the
		// error can say that allow_legacy_sig would accept the package.
		if sigs.Sig2 == nil {
			if sigs.Legacy, err = optional(cache.Bytes(ctx, src+".sig", 4096)); err != nil {
				return nil, fmt.Errorf("%s: signature: %w", p.Pkgver, err)
			}
			verified = "sig"
		}
	}
	if err := xbps.VerifyPackage(p.Package, size, sum, repo.Key, sigs, repo.AllowLegacySig); err != nil {
		return nil, fmt.Errorf("%w (from %s)", err, src)
	}
	return &Fetched{Resolved: p, Path: path, SHA256: hex.EncodeToString(sum), Size: size, Verified: verified}, nil
}

// optional turns "not found" into a nil result without error.
func optional(data []byte, err error) ([]byte, error) {
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

func hashFile(path string) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return h.Sum(nil), n, err
}
