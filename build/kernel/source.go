package kernel

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
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/gitrepo"
	"github.com/simple-uml/simple-uml/build/kernelorg"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/source"
)

// Source is the kernel source a build starts from: a release kernel.lock pins (downloaded from
// kernel.org), a local tarball (kernel.tarball), or a tree of the user's (kernel.tree), built as it
// is. Every target that builds or configures a kernel takes it from Resolve.
type Source struct {
	Version string         // empty for a local tarball until it is unpacked
	SHA256  string         // the tarball's; empty for a tree
	URL     string         // download address of a pinned release
	Tarball string         // a local tarball's path
	Tree    *manifest.Tree // a tree of the user's, with what git says of it
	Display string         // for the record: URL, "local:<name>" or "tree:<path>"
}

// Resolve finds the configured source. A pin's digest is kernel.lock's, or else the line in
// kernel.org's sha256sums.asc after its signature verified against a pinned key; a digest verified
// from a signed list is remembered, so reruns work offline.
func Resolve(ctx context.Context, cfg config.Config, cache *fetch.Cache, w io.Writer) (Source, error) {
	switch {
	case cfg.Kernel.Tree != "":
		return resolveTree(ctx, cfg.Kernel.Tree)
	case cfg.Kernel.Tarball != "":
		sum, err := localSHA256(cfg.Kernel.Tarball, filepath.Join(cfg.Paths.Cache, "verified"))
		if err != nil {
			return Source{}, fmt.Errorf("local kernel tarball (kernel.tarball / SUML_KERNEL_TARBALL): %w", err)
		}
		return Source{SHA256: sum, Tarball: cfg.Kernel.Tarball, Display: "local:" + filepath.Base(cfg.Kernel.Tarball)}, nil
	default:
		return resolvePin(ctx, cfg, cache, w)
	}
}

func resolvePin(ctx context.Context, cfg config.Config, cache *fetch.Cache, w io.Writer) (Source, error) {
	if err := cfg.CheckPinned(); err != nil {
		return Source{}, err
	}
	version := cfg.Pin.Version
	if _, _, err := kernelorg.ParseVersion(version); err != nil {
		return Source{}, fmt.Errorf("%s: %w", config.LockName, err)
	}
	src := Source{Version: version, URL: kernelorg.TarballURL(cfg.Kernel.Mirror, version)}
	src.Display = src.URL
	if cfg.Pin.SHA256 != "" {
		src.SHA256 = strings.ToLower(cfg.Pin.SHA256)
		return src, nil
	}
	name := kernelorg.TarballName(version)
	remembered := filepath.Join(cfg.Paths.Cache, "verified", name+".sha256")
	if data, err := os.ReadFile(remembered); err == nil && len(strings.TrimSpace(string(data))) == 64 {
		src.SHA256 = strings.TrimSpace(string(data))
		return src, nil
	}
	sum, err := SignedSHA256(ctx, cfg, cache, version)
	if err != nil {
		return Source{}, err
	}
	fmt.Fprintf(w, "%s: sha256 %s, from kernel.org's signed sha256sums.asc\n", name, sum)
	if err := os.MkdirAll(filepath.Dir(remembered), 0o755); err != nil {
		return Source{}, err
	}
	if err := files.WriteBytes(remembered, []byte(sum+"\n"), 0o644); err != nil {
		return Source{}, err
	}
	src.SHA256 = sum
	return src, nil
}

// BuildDir is the source's O= folder. It stays the same when patches or fragments change (the source
// tree's path does too, see source.Prepare), so make rebuilds only what a change reaches; a tree has
// one per path, so each build of it is incremental; each profile has its own, so switching back and
// forth rebuilds nothing.
func (s Source) BuildDir(cfg config.Config) string {
	id := s.SHA256[:min(len(s.SHA256), 16)]
	if s.Tree != nil {
		id = "tree-" + digest.JSON(s.Tree.Path)[:16]
	}
	return filepath.Join(cfg.Paths.Cache, "build", id+"-"+cfg.Kernel.Subarch+profileSuffix(cfg))
}

// profileSuffix names a profile other than defconfig in build folder names.
func profileSuffix(cfg config.Config) string {
	if cfg.Kernel.Profile == "" || cfg.Kernel.Profile == "defconfig" {
		return ""
	}
	return "-" + cfg.Kernel.Profile
}

// Prepare makes the source tree to build: a tree of the user's as it is, or the verified tarball
// (downloaded into the cache when pinned) unpacked and patched, or the tree the cache holds for it.
func (s Source) Prepare(ctx context.Context, cfg config.Config, cache *fetch.Cache, series []source.Patch, w io.Writer) (source.Tree, error) {
	if s.Tree != nil {
		stamp, err := treeTimestamp(ctx, s.Tree)
		return source.Tree{Dir: s.Tree.Path, Version: s.Version, Timestamp: stamp}, err
	}
	tarball := s.Tarball
	if tarball == "" {
		var err error
		if tarball, err = cache.File(ctx, s.URL, s.SHA256); err != nil {
			return source.Tree{}, err
		}
	}
	return source.Prepare(ctx, source.TreeRequest{Trees: filepath.Join(cfg.Paths.Cache, "trees"), Tarball: tarball,
		Key: s.SHA256, Version: s.Version, Series: series, BuildDir: s.BuildDir(cfg)}, w)
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
	memo := filepath.Join(dir, "local-"+digest.JSON(path)[:16]+".json")
	var known fileStamp
	if data, err := os.ReadFile(memo); err == nil && json.Unmarshal(data, &known) == nil {
		if sum := known.SHA256; len(sum) == 64 {
			known.SHA256 = ""
			if known == stamp {
				return sum, nil
			}
		}
	}
	sum, err := digest.File(path)
	if err != nil {
		return "", err
	}
	stamp.SHA256 = sum
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = files.WriteJSON(memo, stamp) // only a shortcut: failing to remember is not an error
	}
	return sum, nil
}

// resolveTree checks that path is a kernel source tree and asks git what it holds.
func resolveTree(ctx context.Context, path string) (Source, error) {
	info, err := os.Stat(path)
	if err == nil && !info.IsDir() {
		err = errors.New("not a folder")
	}
	if err != nil {
		return Source{}, fmt.Errorf("kernel.tree %s: %w (name the top folder of a kernel source tree)", path, err)
	}
	version, err := source.TreeVersion(path)
	if err != nil {
		return Source{}, fmt.Errorf("kernel.tree %s is not a kernel source tree: %w", path, err)
	}
	tree := &manifest.Tree{Path: path}
	src := Source{Version: version, Tree: tree, Display: "tree:" + path}
	repo := gitrepo.Repo{Dir: path}
	if tree.Commit, err = repo.Head(ctx); errors.Is(err, gitrepo.ErrNotGit) {
		return src, nil
	} else if err != nil {
		return Source{}, err
	}
	if tree.Dirty, err = repo.Dirty(ctx); err != nil {
		return Source{}, err
	}
	return src, nil
}

// treeTimestamp is the build time written into the kernel: the commit's time, so that building a
// commit twice gives the same kernel; for a tree outside git, its Makefile's modification time.
func treeTimestamp(ctx context.Context, tree *manifest.Tree) (time.Time, error) {
	if tree.Commit != "" {
		return gitrepo.Repo{Dir: tree.Path}.Time(ctx, tree.Commit)
	}
	info, err := os.Stat(filepath.Join(tree.Path, "Makefile"))
	if err != nil {
		return time.Time{}, err
	}
	return info.ModTime().UTC().Truncate(time.Second), nil
}

// DescribeTree says which state of a tree was built.
func DescribeTree(t *manifest.Tree) string {
	switch {
	case t.Commit == "":
		return "not a git work tree"
	case t.Dirty:
		return "commit " + t.Commit[:12] + ", with changes"
	default:
		return "commit " + t.Commit[:12]
	}
}
