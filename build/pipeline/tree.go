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
	b := &treeBuild{cfg: cfg, dist: dist, w: w}
	defer b.cleanup()
	timer := newStepTimer()
	if err := runSteps(ctx, timer,
		step{name: "read tree", run: b.read},
		step{name: "configure", run: b.configure},
		step{name: "build", run: b.build},
		step{name: "install", run: b.install},
	); err != nil {
		return KernelResult{}, err
	}
	fmt.Fprintf(w, "kernel %s built from %s: %s in %s (%s)\n", b.rec.Version, b.tree.Path, filepath.Join(dist, LinuxName), time.Since(start).Round(time.Second), timer)
	logRun(dist, "kernel", b.rec.Version, start, timer.String())
	return KernelResult{Record: b.rec, BuildDir: b.opts.Out}, nil
}

// treeBuild is one build of kernel.tree: what each of its steps reads and leaves.
type treeBuild struct {
	cfg      config.Config
	dist     string
	w        io.Writer
	tree     *manifest.Tree
	inputs   kernelInputs
	rec      manifest.KernelRecord
	stamp    time.Time
	opts     configuredOptions
	closeLog func()
	linux    string
}

// read asks what the tree holds and gathers the other inputs.
func (b *treeBuild) read(ctx context.Context) error {
	tree, version, err := readTree(ctx, b.cfg.Kernel.Tree)
	if err != nil {
		return err
	}
	b.tree = tree
	if b.inputs, err = gatherInputs(ctx, b.cfg, kernelSource{version: version, display: "tree:" + tree.Path}); err != nil {
		return err
	}
	b.rec = b.inputs.record
	// The tree's files are the input, and make decides what to rebuild: no input key.
	b.rec.Tree, b.rec.Patches, b.rec.InputKey = tree, []manifest.Digest{}, ""
	if len(b.inputs.series) > 0 {
		fmt.Fprintf(b.w, "kernel.tree: the %d patches of %s are not applied to a tree of yours (apply them there with `git am`)\n", len(b.inputs.series), b.cfg.Paths.Patches)
	}
	b.stamp, err = treeTimestamp(ctx, tree)
	return err
}

func (b *treeBuild) configure(ctx context.Context) (err error) {
	src := source.Tree{Dir: b.tree.Path, Version: b.inputs.src.version, Timestamp: b.stamp}
	b.opts, b.closeLog, err = configureTree(ctx, b.cfg, src, treeBuildDir(b.cfg, b.tree.Path), b.inputs, b.w)
	return err
}

func (b *treeBuild) build(ctx context.Context) (err error) {
	fmt.Fprintf(b.w, "building %s (%s) out of tree in %s (-j%d); log: %s\n", b.tree.Path, describeTree(b.tree), b.opts.Out, b.opts.Jobs, filepath.Join(b.opts.Out, kbuild.LogName))
	b.linux, b.rec.CCache, err = buildCounted(ctx, b.opts.Options, b.w)
	return err
}

// install puts the kernel into dist under the release it reports (uname -r): the tree's, with
// CONFIG_LOCALVERSION_AUTO's -g<commit>[-dirty].
func (b *treeBuild) install(ctx context.Context) error {
	release, err := os.ReadFile(filepath.Join(b.opts.Out, "include", "config", "kernel.release"))
	if err != nil {
		return fmt.Errorf("the build of %s wrote no kernel.release: %w", b.tree.Path, err)
	}
	b.rec.Version = strings.TrimSpace(string(release))
	return installBuilt(ctx, b.dist, &b.rec, b.opts.Options, b.linux, b.w)
}

func (b *treeBuild) cleanup() {
	if b.closeLog != nil {
		b.closeLog()
	}
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
	return filepath.Join(cfg.Paths.Cache, "build", "tree-"+manifest.HashJSON(tree)[:16]+"-"+cfg.Kernel.Subarch+profileSuffix(cfg))
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
