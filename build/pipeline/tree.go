package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/gitrepo"
	"github.com/simple-uml/simple-uml/build/kbuild"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/source"
)

// treeKernel builds cfg.Kernel.Tree, a kernel source tree of the user's, into dist: out of tree, in a
// build folder of the cache kept for that tree, so each build after the first is incremental. The
// tree is only read (kbuild with O= writes nothing into it, and git is asked with optional locks
// off). patches/ are not applied: a tree is built as it is.
func treeKernel(ctx context.Context, cfg config.Config, dist string, w io.Writer) (KernelResult, error) {
	start := time.Now()
	tree, version, err := readTree(ctx, cfg.Kernel.Tree)
	if err != nil {
		return KernelResult{}, err
	}
	inputs, err := gatherInputs(ctx, cfg, kernelSource{version: version, display: "tree:" + tree.Path})
	if err != nil {
		return KernelResult{}, err
	}
	rec := inputs.record
	rec.Tree, rec.Patches, rec.InputKey = tree, nil, "" // the tree's files are the input: make decides what to rebuild
	if len(inputs.series) > 0 {
		fmt.Fprintf(w, "kernel.tree: the %d patches of %s are not applied to a tree of yours (apply them there with `git am`)\n", len(inputs.series), cfg.Paths.Patches)
	}
	stamp, err := treeTimestamp(ctx, tree)
	if err != nil {
		return KernelResult{}, err
	}
	out := treeBuildDir(cfg, tree.Path)
	opts, closeLog, err := buildOptions(cfg, source.Tree{Dir: tree.Path, Version: version, Timestamp: stamp}, out, w)
	if err != nil {
		return KernelResult{}, err
	}
	defer closeLog()
	if _, err := kbuild.Configure(ctx, opts, inputs.requested); err != nil {
		return KernelResult{}, fmt.Errorf("configure kernel tree %s: %w", tree.Path, err)
	}
	fmt.Fprintf(w, "building %s (%s) out of tree in %s (-j%d); log: %s\n", tree.Path, describeTree(tree), out, opts.Jobs, filepath.Join(out, kbuild.LogName))
	linux, err := kbuild.Build(ctx, opts)
	if err != nil {
		return KernelResult{}, err
	}
	// The release the kernel reports (uname -r), with CONFIG_LOCALVERSION_AUTO's -g<commit>[-dirty].
	release, err := os.ReadFile(filepath.Join(out, "include", "config", "kernel.release"))
	if err != nil {
		return KernelResult{}, fmt.Errorf("the build of %s wrote no kernel.release: %w", tree.Path, err)
	}
	rec.Version = strings.TrimSpace(string(release))
	if err := installBuilt(ctx, dist, &rec, opts, linux, w); err != nil {
		return KernelResult{}, err
	}
	fmt.Fprintf(w, "kernel %s built from %s: %s (%s)\n", rec.Version, tree.Path, filepath.Join(dist, LinuxName), time.Since(start).Round(time.Second))
	logRun(dist, "kernel", rec.Version, start, "")
	return KernelResult{Record: rec, BuildDir: out}, nil
}

// readTree checks that path is a kernel source tree and asks git what it holds.
func readTree(ctx context.Context, path string) (*manifest.Tree, string, error) {
	info, err := os.Stat(path)
	if err == nil && !info.IsDir() {
		err = errors.New("not a folder")
	}
	if err != nil {
		return nil, "", fmt.Errorf("kernel.tree %s: %w (name the top folder of a kernel source tree)", path, err)
	}
	version, err := source.TreeVersion(path)
	if err != nil {
		return nil, "", fmt.Errorf("kernel.tree %s is not a kernel source tree: %w", path, err)
	}
	tree := &manifest.Tree{Path: path}
	repo := gitrepo.Repo{Dir: path}
	if tree.Commit, err = repo.Head(ctx); errors.Is(err, gitrepo.ErrNotGit) {
		return tree, version, nil
	} else if err != nil {
		return nil, "", err
	}
	if tree.Dirty, err = repo.Dirty(ctx); err != nil {
		return nil, "", err
	}
	return tree, version, nil
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

// treeBuildDir is the O= folder of a tree: one per tree path, so that each build of it is incremental.
func treeBuildDir(cfg config.Config, tree string) string {
	return filepath.Join(cfg.Paths.Cache, "build", "tree-"+manifest.HashJSON(tree)[:16]+"-"+cfg.Kernel.Subarch)
}

func describeTree(t *manifest.Tree) string {
	switch {
	case t.Commit == "":
		return "not a git work tree"
	case t.Dirty:
		return "commit " + t.Commit[:12] + ", with changes"
	default:
		return "commit " + t.Commit[:12]
	}
}
