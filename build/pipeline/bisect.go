package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/simple-uml/simple-uml/build/bisect"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/gitrepo"
	"github.com/simple-uml/simple-uml/build/kunit"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// BisectRequest is what `mage bisect` looks for between two commits of kernel.tree.
type BisectRequest struct {
	Good, Bad string // revisions: the last known good, the first known bad
	// The check of a commit: Script runs in the booted guest after mage test's own checks (a commit
	// is bad when any fails, or the guest does not come up); KUnit boots the kernel with that filter
	// (bad when a selected test fails). Neither: mage test's own checks.
	Script, KUnit string
}

// bisectStages are what a step does to a commit, given the step's configuration, whose dist is the
// bisect's own: build the tree, then check what was built (dist is the user's, with the image to boot).
type bisectStages struct {
	build func(ctx context.Context, step config.Config, log io.Writer) error
	check func(ctx context.Context, step config.Config, req BisectRequest, dist string, log io.Writer) error
}

// realBisectStages build with `mage kernel` and check with `mage kunit` or `mage test`.
var realBisectStages = bisectStages{
	build: func(ctx context.Context, step config.Config, log io.Writer) error {
		_, err := Kernel(ctx, step, log)
		return err
	},
	check: bisectCheck,
}

// Bisect finds the commit of kernel.tree between req.Good and req.Bad that brought a failure, with
// git bisect: each step is an incremental build of the tree (in its build folder, the one `mage
// kernel` uses) and a boot running the check; a commit that does not build is skipped. The tree's
// checkout is put back as it was when Bisect ends, however it ends; the verdicts are kept, so that
// running it again after Ctrl-C goes on where it stopped without building again.
func Bisect(ctx context.Context, cfg config.Config, req BisectRequest, w io.Writer) (bisect.Result, error) {
	return bisectWith(ctx, cfg, req, realBisectStages, w)
}

// bisectWith is Bisect with the stages a step runs.
func bisectWith(ctx context.Context, cfg config.Config, req BisectRequest, stages bisectStages, w io.Writer) (bisect.Result, error) {
	ctx, run, err := startRun(ctx, cfg, "mage bisect", w)
	if err != nil {
		return bisect.Result{}, err
	}
	defer run.end()
	check, err := bisectCheckKey(cfg, req)
	if err != nil {
		return bisect.Result{}, err
	}
	repo := gitrepo.Repo{Dir: cfg.Kernel.Tree, Log: io.Discard}
	b, err := bisect.Open(ctx, repo, req.Good, req.Bad, filepath.Join(cfg.Paths.Cache, "bisect"), check)
	if err != nil {
		return bisect.Result{}, err
	}
	step := cfg
	step.Paths.Dist = filepath.Join(b.Dir(), "dist")
	return b.Run(ctx, bisect.Stages{
		Build: func(ctx context.Context, log io.Writer) error { return stages.build(ctx, step, log) },
		Check: func(ctx context.Context, log io.Writer) error {
			return stages.check(ctx, step, req, cfg.Paths.Dist, log)
		},
	}, w)
}

// bisectCheckKey checks the request and names its check, for the bisect's folder: the script's
// content, the KUnit filter, or mage test's own checks of the recipe's image, which must be in dist/
// before any build.
func bisectCheckKey(cfg config.Config, req BisectRequest) (string, error) {
	switch {
	case cfg.Kernel.Tree == "":
		return "", errors.New("bisect needs a kernel source tree: set kernel.tree (SUML_KERNEL_TREE) to your git work tree")
	case req.Good == "" || req.Bad == "":
		return "", errors.New("bisect: name the last good commit and the first bad one (-good=<commit> -bad=<commit>)")
	case req.Script != "" && req.KUnit != "":
		return "", errors.New("bisect: give a -script or a -kunit filter, not both")
	case req.KUnit != "" && !kunit.ValidFilter(req.KUnit):
		return "", fmt.Errorf("bisect -kunit %q: use suite and test names with * ? [ ] globs", req.KUnit)
	case req.KUnit != "":
		return "kunit:" + req.KUnit, nil
	}
	image, _, record := manifest.RootfsFiles(cfg.Paths.Dist, cfg.Boot.Recipe)
	for _, p := range []string{image, record} {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("bisect boots %s's image: build it first with `go tool mage rootfs`: %w", cfg.Boot.Recipe, err)
		}
	}
	if req.Script == "" {
		return "test:" + cfg.Boot.Recipe, nil
	}
	sum, err := digest.File(req.Script)
	if err != nil {
		return "", fmt.Errorf("bisect -script: %w", err)
	}
	return "script:" + cfg.Boot.Recipe + ":" + sum, nil
}

// bisectCheck runs the bisect's check on the kernel in step's dist: `mage kunit` with the request's
// filter, or `mage test` with its script on the image of dist.
func bisectCheck(ctx context.Context, step config.Config, req BisectRequest, dist string, log io.Writer) error {
	if req.KUnit != "" {
		step.Kernel.KunitConfig = nil // built in by the step's build already
		_, err := Kunit(ctx, step, req.KUnit, log)
		return err
	}
	// The image to boot, from the real dist/ into the bisect's (a hard link: it is only read).
	image, _, record := manifest.RootfsFiles(dist, step.Boot.Recipe)
	for _, p := range []string{image, record} {
		if err := files.LinkOrCopy(p, filepath.Join(step.Paths.Dist, filepath.Base(p))); err != nil {
			return err
		}
	}
	step.Test.Scripts = nil
	if req.Script != "" {
		step.Test.Scripts = []string{req.Script}
	}
	_, err := GuestTest(ctx, step, log)
	return err
}
