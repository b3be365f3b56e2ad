package userpkg

import (
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/xbps"
)

// RepoOptions says how a folder of packages becomes a repository.
type RepoOptions struct {
	// Key signs the repository and every package when set; nil makes an unsigned repository.
	Key *rsa.PrivateKey
	// SignedBy is the signer's name ("Name <email>") index-meta.plist gives with Key; required with it.
	SignedBy string
	// Arches are the <arch>-repodata files to write; empty: one for each architecture among the
	// packages (noarch packages go into each).
	Arches []string
}

// Repo is a repository IndexFolder wrote.
type Repo struct {
	Dir     string
	Indexes []*xbps.Index // one per architecture, by name
	// Packages are the folder's package files, by name; Skipped those no index took (an older
	// version, or another architecture than the ones asked for).
	Packages, Skipped []string
	// Fingerprint is the key's, in xbps's form, for a recipe's keys; empty when unsigned.
	Fingerprint string
}

// maxPackages bounds a folder's packages, as Void's largest repository has about 15000.
const maxPackages = 1 << 16

// IndexFolder makes dir's .xbps files into a repository, as xbps-rindex does: with o.Key, first
// a .sig2 for every package (xbps-rindex --sign-pkg), then each <arch>-repodata (xbps-rindex -a,
// then --sign). Packages are read through an os.Root of dir; every file is written under a
// temporary name and renamed, so a client never reads an index whose signatures are not there yet.
func IndexFolder(dir string, o RepoOptions) (*Repo, error) {
	if o.Key != nil && o.SignedBy == "" {
		return nil, errors.New(`a signed repository names its signer: give the signer's name, e.g. "Your Name <you@example.org>"`)
	}
	for _, a := range o.Arches {
		if err := ident.Name("architecture", a); err != nil || a == "noarch" {
			return nil, fmt.Errorf("architecture %q: name the repodata's, as x86_64, x86_64-musl or aarch64", a)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("repository folder: %w", err)
	}
	defer root.Close()
	names, err := packageFiles(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s holds no .xbps package: make one with go tool mage pkg <template> -out=%s", dir, dir)
	}
	r := &Repo{Dir: dir, Packages: names}
	entries := make([]map[string]any, len(names))
	arches := map[string]bool{}
	for i, name := range names {
		if entries[i], err = readEntry(root, name); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
		if a := entries[i]["architecture"].(string); a != "noarch" {
			arches[a] = true
		}
	}
	want := o.Arches
	if len(want) == 0 {
		for a := range arches {
			want = append(want, a)
		}
		if len(want) == 0 {
			return nil, fmt.Errorf("%s holds only noarch packages: say which architecture's repodata to write (x86_64, x86_64-musl, aarch64, ...)", dir)
		}
	}
	sort.Strings(want)
	for _, arch := range want {
		ix := xbps.NewIndex(arch)
		for i, e := range entries {
			if _, err := ix.Add(e); err != nil {
				return nil, fmt.Errorf("%s: %w", names[i], err)
			}
		}
		r.Indexes = append(r.Indexes, ix)
	}
	for _, name := range names {
		if !slices.ContainsFunc(r.Indexes, func(ix *xbps.Index) bool { return inIndex(ix, name) }) {
			r.Skipped = append(r.Skipped, name)
		}
	}
	var meta map[string]any
	if o.Key != nil {
		r.Fingerprint = xbps.Fingerprint(&o.Key.PublicKey)
		if meta, err = xbps.SignedMeta(&o.Key.PublicKey, o.SignedBy); err != nil {
			return nil, err
		}
		if err := signPackages(dir, o, names, entries); err != nil {
			return nil, err
		}
	}
	for _, ix := range r.Indexes {
		err := files.WriteAtomic(filepath.Join(dir, ix.Arch+"-repodata"), 0o644, func(w io.Writer) error {
			return xbps.WriteRepodata(w, ix.Entries, meta)
		})
		if err != nil {
			return nil, fmt.Errorf("%s-repodata: %w", ix.Arch, err)
		}
	}
	return r, nil
}

// signPackages writes each package's .sig2 beside it, as xbps-rindex --sign-pkg does.
func signPackages(dir string, o RepoOptions, names []string, entries []map[string]any) error {
	for i, name := range names {
		sum, _ := hex.DecodeString(entries[i]["filename-sha256"].(string))
		sig, err := xbps.SignPackage(o.Key, sum)
		if err != nil {
			return fmt.Errorf("sign %s: %w", name, err)
		}
		if err := files.WriteBytes(filepath.Join(dir, name+".sig2"), sig, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// inIndex says whether the package file name is the entry the index kept for its package.
func inIndex(ix *xbps.Index, name string) bool {
	for _, v := range ix.Entries {
		e := v.(map[string]any)
		if e["pkgver"].(string)+"."+e["architecture"].(string)+".xbps" == name {
			return true
		}
	}
	return false
}

// packageFiles lists the folder's package files, sorted; hidden names (temporary files) are not.
func packageFiles(root *os.Root) ([]string, error) {
	des, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range des {
		if strings.HasSuffix(d.Name(), ".xbps") && !strings.HasPrefix(d.Name(), ".") {
			out = append(out, d.Name())
		}
	}
	if len(out) > maxPackages {
		return nil, fmt.Errorf("more than %d packages", maxPackages)
	}
	return out, nil
}

// readEntry reads one package's index entry and checks that its file has the name clients will ask for.
func readEntry(root *os.Root, name string) (map[string]any, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", err)
	}
	e, err := xbps.IndexEntry(f)
	if err != nil {
		return nil, err
	}
	want := e["pkgver"].(string) + "." + e["architecture"].(string) + ".xbps"
	if name != want {
		return nil, fmt.Errorf("it holds %s, which clients download as %s: rename it so", e["pkgver"], want)
	}
	return e, nil
}
