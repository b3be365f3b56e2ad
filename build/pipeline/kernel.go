// Package pipeline puts the stages together into what the mage targets run: each function takes the
// loaded configuration, runs its stages' steps in order, and returns what it produced. The stages
// themselves live in their own packages and know nothing of one another.
package pipeline

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/source"
)

// KernelResult says what Kernel did.
type KernelResult struct {
	Record   manifest.KernelRecord
	UpToDate bool   // nothing was done: dist/ already held these outputs
	BuildDir string // the O= directory, holding the unstripped linux and the build log
}

// Kernel builds the configured kernel (a release kernel.lock pins, a local tarball, or kernel.tree)
// into cfg.Paths.Dist: a plan, and when dist/ does not hold its outputs yet, the steps. Progress and
// commands go to w.
func Kernel(ctx context.Context, cfg config.Config, w io.Writer) (KernelResult, error) {
	// A series kernel.lock does not pin is said before the host's tools are checked or the lock taken.
	if err := cfg.CheckPinned(); err != nil {
		return KernelResult{}, err
	}
	if err := host.Check(host.Kernel); err != nil {
		return KernelResult{}, err
	}
	ctx, run, err := startRun(ctx, cfg, "mage kernel", w)
	if err != nil {
		return KernelResult{}, err
	}
	defer run.end()
	start := time.Now()
	b := &kernelBuild{cfg: cfg, w: w, cache: &fetch.Cache{Dir: cfg.Paths.Downloads, Log: w}}
	if b.in, err = kernel.Plan(ctx, cfg, b.cache, w); err != nil {
		return KernelResult{}, err
	}
	b.rec = b.in.Record
	if r, ok := b.upToDate(); ok {
		fmt.Fprintf(w, "kernel %s is up to date in %s (inputs %s); nothing to do (%s)\n",
			r.Version, cfg.Paths.Dist, b.rec.InputKey[:12], time.Since(start).Round(time.Millisecond))
		return KernelResult{Record: *r, UpToDate: true, BuildDir: b.in.Source.BuildDir(cfg)}, nil
	}
	defer b.cleanup()
	timer := newStepTimer()
	if err := runSteps(ctx, timer,
		step{name: "source", run: b.source},
		step{name: "configure", run: b.configure},
		step{name: "build", run: b.build},
		step{name: "install", run: b.install},
	); err != nil {
		return KernelResult{}, err
	}
	fmt.Fprintf(w, "kernel %s built from %s: %s in %s (%s)\n", b.rec.Version, b.rec.Source, filepath.Join(cfg.Paths.Dist, kernel.LinuxName), time.Since(start).Round(time.Second), timer)
	run.log("kernel", b.rec.Version, start, timer.String())
	return KernelResult{Record: b.rec, BuildDir: b.configured.Out}, nil
}

// kernelBuild is one build of a kernel: what each of its steps reads and leaves.
type kernelBuild struct {
	cfg        config.Config
	w          io.Writer
	cache      *fetch.Cache
	in         kernel.Inputs
	rec        manifest.KernelRecord // filled in as the steps go
	tree       source.Tree
	configured *kernel.Build
	linux      string // the unstripped executable in the build folder
}

// upToDate reads dist's record when it was made from these inputs and its outputs are as recorded.
// A tree has no input key: make decides what to rebuild.
func (b *kernelBuild) upToDate() (*manifest.KernelRecord, bool) {
	if b.rec.InputKey == "" {
		return nil, false
	}
	return manifest.ReadCurrent[manifest.KernelRecord](filepath.Join(b.cfg.Paths.Dist, manifest.KernelRecordName), b.rec.InputKey)
}

func (b *kernelBuild) source(ctx context.Context) (err error) {
	b.tree, err = b.in.Source.Prepare(ctx, b.cfg, b.cache, b.in.Series, b.w)
	return err
}

func (b *kernelBuild) configure(ctx context.Context) (err error) {
	b.configured, err = kernel.Configure(ctx, b.cfg, b.tree, b.in, b.w)
	return err
}

func (b *kernelBuild) build(ctx context.Context) (err error) {
	b.linux, b.rec.CCache, err = b.configured.Make(ctx, b.w)
	return err
}

func (b *kernelBuild) install(ctx context.Context) (err error) {
	if b.rec.Version, err = b.configured.Release(); err != nil {
		return err
	}
	return kernel.Install(ctx, b.cfg.Paths.Dist, &b.rec, b.configured, b.linux, b.w)
}

func (b *kernelBuild) cleanup() {
	if b.configured != nil {
		b.configured.Close()
	}
}
