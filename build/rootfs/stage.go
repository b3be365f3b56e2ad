package rootfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/confine"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/xbps"
	"github.com/simple-uml/simple-uml/build/xbps/proplib"
)

// Staged is a root filesystem tree as xbps-install would leave it, before the packages' INSTALL
// scripts run.
type Staged struct {
	Tree string
	// Scripts are the packages with an INSTALL script, in install order.
	Scripts []Script
	// Owners maps guest paths to "uid:gid" for files a package does not give to root.
	Owners map[string]string
	// Modes maps guest paths to permission bits (as chmod takes them) for files whose setuid or setgid
	// bit the tree on the host does not carry.
	Modes map[string]uint32
	// Epoch is the newest file time of any package: the install date recorded in pkgdb.
	Epoch time.Time
}

// Script is one package's INSTALL script, as xbps runs it: script ACTION PKGNAME VERSION UPDATE CONF_FILE ARCH,
// with ARCH the system's architecture.
type Script struct {
	Pkgname, Version, Arch string
	Path                   string // guest path of the saved script
}

// Guest paths that simple-uml owns inside the image.
const (
	scriptDir     = "/.simple-uml"
	ConfigureInit = scriptDir + "/configure"
	xbpsDB        = "/var/db/xbps"
	pkgdbName     = "pkgdb-0.38.plist"
	xbpsCache     = "var/cache/xbps"
)

// Stage unpacks the verified packages into tree in install order and writes xbps's database (pkgdb,
// per-package files lists, trusted keys), the alternatives, and the recipe's settings. Every file
// operation in tree goes through an os.Root of it: what the packages and the index put there (links
// to host files, ".." in alternatives) is resolved inside the tree, or refused.
func Stage(ctx context.Context, tree string, r *Recipe, repos []*Repo, pkgs []*Fetched) (*Staged, error) {
	root, err := os.OpenRoot(tree)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	st := &Staged{Tree: tree, Owners: map[string]string{}, Modes: map[string]uint32{}}
	db := map[string]any{}
	alternatives := map[string]any{}
	for _, p := range pkgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, err := unpackVerified(ctx, p, root)
		if err != nil {
			return nil, err
		}
		st.add(c)
		entry, err := pkgdbEntry(root, p, c)
		if err != nil {
			return nil, err
		}
		if len(c.Install) > 0 {
			entry["install-script"] = c.Install
			// xbps passes its own (native) architecture, not the package's, which may be noarch.
			s := Script{Pkgname: p.Name, Version: p.Version, Arch: r.Arch, Path: scriptDir + "/" + p.Name + ".INSTALL"}
			if err := writeGuestFile(root, s.Path, c.Install, 0o750); err != nil {
				return nil, err
			}
			st.Scripts = append(st.Scripts, s)
		}
		if len(c.Remove) > 0 {
			entry["remove-script"] = c.Remove
		}
		db[p.Name] = entry
		if err := applyAlternatives(root, p.Package, alternatives); err != nil {
			return nil, fmt.Errorf("%s: alternatives: %w", p.Pkgver, err)
		}
	}
	date := st.Epoch.UTC().Format("2006-01-02 15:04 MST")
	for _, e := range db {
		e.(map[string]any)["install-date"] = date
	}
	// xbps keeps the key even when no package has alternatives; xbps-alternatives fails without it.
	db["_XBPS_ALTERNATIVES_"] = alternatives
	data, err := proplib.Marshal(db)
	if err != nil {
		return nil, fmt.Errorf("pkgdb: %w", err)
	}
	if err := writeGuestFile(root, xbpsDB+"/"+pkgdbName, data, 0o644); err != nil {
		return nil, err
	}
	// xbps-install leaves its package cache folder behind; the image's xbps expects it.
	if err := root.MkdirAll(xbpsCache, 0o755); err != nil {
		return nil, err
	}
	if err := writeKeys(root, repos); err != nil {
		return nil, err
	}
	if err := applySettings(root, r, repos, st.Epoch); err != nil {
		return nil, err
	}
	if len(st.Scripts) > 0 {
		if err := writeConfigure(root, st.Scripts, st.Epoch); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// add takes in what unpacking a package left: its files' owners and modes, and its newest time.
func (st *Staged) add(c *xbps.Contents) {
	for _, path := range c.Paths { // a package that replaces a file replaces its owner and mode
		delete(st.Owners, path)
		delete(st.Modes, path)
	}
	for k, v := range c.Owners {
		st.Owners[k] = v
	}
	for k, v := range c.Modes {
		st.Modes[k] = v
	}
	if c.Newest.After(st.Epoch) {
		st.Epoch = c.Newest
	}
}

// pkgdbEntry is a package's record in pkgdb as xbps 0.60 leaves it: the repository index's entry,
// with the files list's digest, the state and, for dependencies, automatic-install; its files list
// is written beside pkgdb as xbps writes it, or not at all when the package has no files.
func pkgdbEntry(root *os.Root, p *Fetched, c *xbps.Contents) (map[string]any, error) {
	entry := copyDict(p.Props)
	delete(entry, "version")
	entry["pkgname"] = p.Name
	entry["state"] = "installed"
	if p.Automatic {
		entry["automatic-install"] = true
	}
	entry["repository"] = PublicRepo(p.Repo.URL)
	files, err := proplib.Unmarshal(c.FilesPlist)
	if err != nil {
		return nil, &xbps.PackageError{Pkgver: p.Pkgver, Err: fmt.Errorf("files.plist: %w (xbps refuses such a package)", err)}
	}
	if d, ok := files.(map[string]any); !ok {
		return nil, &xbps.PackageError{Pkgver: p.Pkgver, Err: errors.New("files.plist is not a dictionary")}
	} else if len(d) == 0 {
		return entry, nil
	}
	data, err := proplib.Marshal(files)
	if err != nil {
		return nil, &xbps.PackageError{Pkgver: p.Pkgver, Err: fmt.Errorf("files.plist: %w", err)}
	}
	if err := writeGuestFile(root, "/"+path.Join(xbpsDB[1:], "."+p.Name+"-files.plist"), data, 0o644); err != nil {
		return nil, err
	}
	entry["metafile-sha256"] = digest.Bytes(data)
	return entry, nil
}

// unpackVerified unpacks a fetched package while hashing it once more, so a cache file changed
// since it was verified fails the build (the staging tree is then thrown away).
func unpackVerified(ctx context.Context, p *Fetched, root *os.Root) (*xbps.Contents, error) {
	f, err := os.Open(p.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	c, err := xbps.Unpack(ctx, io.TeeReader(f, h), root)
	if err != nil {
		return nil, &xbps.PackageError{Pkgver: p.Pkgver, Err: err}
	}
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return nil, &xbps.PackageError{Pkgver: p.Pkgver, Err: fmt.Errorf("%s changed after it was verified (sha256 %s)", p.Path, got)}
	}
	if c.Package.Pkgver != p.Pkgver {
		// xbps refuses this too: a repository entry must not smuggle in another version.
		return nil, &xbps.PackageError{Pkgver: p.Pkgver, Err: fmt.Errorf("its props.plist says %s", c.Package.Pkgver)}
	}
	return c, nil
}

// applyAlternatives registers a package's alternatives groups; the first provider of a group gets
// the links, later ones are only recorded, as xbps does.
func applyAlternatives(root *os.Root, p *xbps.Package, registry map[string]any) error {
	groups := make([]string, 0, len(p.Alternatives))
	for g := range p.Alternatives {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		providers, _ := registry[g].([]any)
		registry[g] = append(providers, p.Name)
		if len(providers) > 0 {
			continue
		}
		for _, entry := range p.Alternatives[g] {
			link, target, ok := strings.Cut(entry, ":")
			if !ok || link == "" || target == "" {
				return fmt.Errorf("group %s: entry %q is not link:target", g, entry)
			}
			if !path.IsAbs(link) {
				if !path.IsAbs(target) {
					return fmt.Errorf("group %s: %q: a relative link needs an absolute target", g, entry)
				}
				link = path.Join(path.Dir(target), link)
			}
			if path.IsAbs(target) {
				rel, err := filepath.Rel(path.Dir(link), target)
				if err != nil {
					return err
				}
				target = rel
			}
			if err := guestSymlink(root, link, target); err != nil {
				return fmt.Errorf("group %s: %w", g, err)
			}
		}
	}
	return nil
}

// guestRel turns an absolute guest path into a clean path relative to the root, refusing "..".
func guestRel(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("path %q contains ..", p)
		}
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("path %q names the root", p)
	}
	return c[1:], nil
}

// writeGuestFile writes a file at an absolute guest path, replacing what is there (a symlink is
// replaced, not followed).
func writeGuestFile(root *os.Root, guestPath string, data []byte, mode fs.FileMode) error {
	rel, err := guestRel(guestPath)
	if err != nil {
		return err
	}
	if err := replaceable(root, guestPath, rel); err != nil {
		return err
	}
	return confine.WriteNew(root, rel, bytes.NewReader(data), mode, time.Time{})
}

// guestSymlink makes a symlink at an absolute guest path, replacing what is there.
func guestSymlink(root *os.Root, guestPath, target string) error {
	rel, err := guestRel(guestPath)
	if err != nil {
		return err
	}
	if err := replaceable(root, guestPath, rel); err != nil {
		return err
	}
	return root.Symlink(target, rel)
}

// replaceable makes rel's parents and removes what is at rel, unless that is a directory.
func replaceable(root *os.Root, guestPath, rel string) error {
	if err := xbps.MkParents(root, rel); err != nil {
		return err
	}
	fi, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory", guestPath)
	}
	return root.Remove(rel)
}

func copyDict(d map[string]any) map[string]any {
	out := make(map[string]any, len(d))
	for k, v := range d {
		out[k] = v
	}
	return out
}

// writeKeys stores each signed repository's key where xbps looks for trusted keys, from the index's
// meta data as xbps-install does when it imports a key.
func writeKeys(root *os.Root, repos []*Repo) error {
	for _, r := range repos {
		if r.Key == nil {
			continue
		}
		m := r.Index.Data.Meta
		data, err := proplib.Marshal(map[string]any{
			"public-key": m.PublicKeyPEM, "public-key-size": m.PublicKeySize, "signature-by": m.SignatureBy,
		})
		if err != nil {
			return err
		}
		if err := writeGuestFile(root, xbpsDB+"/keys/"+r.Fingerprint+".plist", data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
