// Package pipeline puts the stages together into what the mage targets run: each function takes the
// loaded configuration, does its stages in order, and returns what it produced. The stages themselves
// live in their own packages and know nothing of one another.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/kbuild"
	"github.com/simple-uml/simple-uml/build/kconf"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/run"
	"github.com/simple-uml/simple-uml/build/source"
	"github.com/simple-uml/simple-uml/build/ui"
)

// Names of the kernel's outputs in dist/.
const (
	LinuxName     = "linux"
	ConfigName    = "linux.config"
	SystemMapName = "System.map"
	// LicenseName is the kernel's licence (COPYING and the licence texts it points to), for the
	// release tarball.
	LicenseName = "linux.COPYING"
	// DebugName is the unstripped kernel for gdb (`mage debug`): kept in dist/, not a release asset.
	DebugName = "linux-debug"
)

// KernelResult says what Kernel did.
type KernelResult struct {
	Record   manifest.KernelRecord
	UpToDate bool   // nothing was done: dist/ already held these outputs
	BuildDir string // the O= directory, holding the unstripped linux and the build log
}

// Kernel builds the configured kernel into cfg.Paths.Dist. Progress and commands go to w.
func Kernel(ctx context.Context, cfg config.Config, w io.Writer) (KernelResult, error) {
	start := time.Now()
	if err := host.Check(host.Kernel); err != nil {
		return KernelResult{}, err
	}
	unlock, err := startRun(ctx, cfg, "mage kernel", w)
	if err != nil {
		return KernelResult{}, err
	}
	defer unlock()
	if cfg.Kernel.Tree != "" {
		return treeKernel(ctx, cfg, cfg.Paths.Dist, w)
	}
	b := &kernelBuild{cfg: cfg, w: w}
	if b.cache, b.inputs, err = plan(ctx, cfg, w); err != nil {
		return KernelResult{}, err
	}
	b.rec = b.inputs.record
	if r, ok := manifest.ReadCurrent[manifest.KernelRecord](filepath.Join(cfg.Paths.Dist, manifest.KernelRecordName), b.rec.InputKey); ok {
		fmt.Fprintf(w, "kernel %s is up to date in %s (inputs %s); nothing to do (%s)\n",
			r.Version, cfg.Paths.Dist, b.rec.InputKey[:12], time.Since(start).Round(time.Millisecond))
		return KernelResult{Record: *r, UpToDate: true, BuildDir: b.inputs.buildDir(cfg)}, nil
	}
	defer b.cleanup()
	timer := newStepTimer()
	if err := runSteps(ctx, timer,
		step{name: "fetch", run: b.fetch},
		step{name: "source", run: b.source},
		step{name: "configure", run: b.configure},
		step{name: "build", run: b.build},
		step{name: "install", run: b.install},
	); err != nil {
		return KernelResult{}, err
	}
	fmt.Fprintf(w, "kernel %s built: %s in %s (%s)\n", b.rec.Version, filepath.Join(cfg.Paths.Dist, LinuxName), time.Since(start).Round(time.Second), timer)
	logRun(cfg.Paths.Dist, "kernel", b.rec.Version, start, timer.String())
	return KernelResult{Record: b.rec, BuildDir: b.opts.Out}, nil
}

// kernelBuild is one build of a release's kernel: what each of its steps reads and leaves.
type kernelBuild struct {
	cfg      config.Config
	w        io.Writer
	cache    *fetch.Cache
	inputs   kernelInputs
	rec      manifest.KernelRecord // filled in as the steps go
	tarball  string
	tree     source.Tree
	opts     configuredOptions
	closeLog func()
	linux    string // the unstripped executable in the build folder
}

func (b *kernelBuild) fetch(ctx context.Context) (err error) {
	b.tarball, err = b.inputs.src.fetch(ctx, b.cache)
	return err
}

func (b *kernelBuild) source(ctx context.Context) (err error) {
	b.tree, err = prepareSource(ctx, b.cfg, b.tarball, b.inputs, b.w)
	return err
}

func (b *kernelBuild) configure(ctx context.Context) (err error) {
	b.opts, b.closeLog, err = configureTree(ctx, b.cfg, b.tree, b.inputs.buildDir(b.cfg), b.inputs, b.w)
	return err
}

func (b *kernelBuild) build(ctx context.Context) (err error) {
	fmt.Fprintf(b.w, "building linux %s (ARCH=um SUBARCH=%s, -j%d); log: %s\n", b.opts.Version, b.cfg.Kernel.Subarch, b.opts.Jobs, filepath.Join(b.opts.Out, kbuild.LogName))
	b.linux, b.rec.CCache, err = buildCounted(ctx, b.opts.Options, b.w)
	return err
}

// buildCounted builds, and with ccache as the compiler wrapper says what ccache did for the build.
func buildCounted(ctx context.Context, opts kbuild.Options, w io.Writer) (string, *manifest.CCacheStats, error) {
	if opts.CCWrapper != "ccache" {
		linux, err := kbuild.Build(ctx, opts)
		return linux, nil, err
	}
	if opts.CCacheRemote != "" {
		fmt.Fprintf(w, "ccache: remote storage %s (kernel.ccache_remote)\n", opts.CCacheRemote)
	}
	before, err := kbuild.CCacheStats(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("ccache (kernel.cc_wrapper): %w", err)
	}
	linux, err := kbuild.Build(ctx, opts)
	if err != nil {
		return "", nil, err
	}
	after, err := kbuild.CCacheStats(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("ccache (kernel.cc_wrapper): %w", err)
	}
	delta := func(names ...string) (n int64) {
		for _, name := range names {
			n += after[name] - before[name]
		}
		return n
	}
	stats := &manifest.CCacheStats{Hits: delta("direct_cache_hit", "preprocessed_cache_hit"),
		RemoteHits: delta("remote_storage_hit"), Misses: delta("cache_miss")}
	fmt.Fprintf(w, "ccache: %d hits (%d from remote storage), %d misses\n", stats.Hits, stats.RemoteHits, stats.Misses)
	return linux, stats, nil
}

func (b *kernelBuild) install(ctx context.Context) error {
	b.rec.Version = b.opts.Version
	return installBuilt(ctx, b.cfg.Paths.Dist, &b.rec, b.opts.Options, b.linux, b.w)
}

func (b *kernelBuild) cleanup() {
	if b.closeLog != nil {
		b.closeLog()
	}
}

// installBuilt puts a built kernel and its record into dist. After a version change (a bump, another
// commit of a tree), the record lists the Kconfig options that are new or changed against the
// previous build's resolved config, so a reviewer sees what the new kernel brought.
func installBuilt(ctx context.Context, dist string, rec *manifest.KernelRecord, opts kbuild.Options, linux string, w io.Writer) error {
	rec.BuildEnv = opts.Env()
	if prev, err := manifest.ReadKernelRecord(dist); err == nil && prev.Version != rec.Version {
		changes, err := kconf.Changes(filepath.Join(dist, ConfigName), filepath.Join(opts.Out, ".config"))
		if err == nil {
			rec.ConfigBase, rec.ConfigChanges = prev.Version, changes
			reportConfigChanges(w, prev.Version, changes)
		}
	}
	var err error
	if rec.Outputs, err = installKernel(ctx, dist, linux, opts.Out, opts.Src); err != nil {
		return err
	}
	return files.WriteJSON(filepath.Join(dist, manifest.KernelRecordName), rec)
}

// plan resolves the source and gathers the build's inputs: everything known before anything is
// downloaded or unpacked.
func plan(ctx context.Context, cfg config.Config, w io.Writer) (*fetch.Cache, kernelInputs, error) {
	cache := &fetch.Cache{Dir: cfg.Paths.Downloads, Log: w}
	src, err := resolveSource(ctx, cfg, cache, w)
	if err != nil {
		return nil, kernelInputs{}, err
	}
	inputs, err := gatherInputs(ctx, cfg, src)
	return cache, inputs, err
}

// configuredOptions are build options for a configured tree, with the tree's version.
type configuredOptions struct {
	kbuild.Options
	Version string
}

// configure fetches, unpacks and patches the source (or takes the cached tree) and configures the
// build directory: Kernel's steps up to the build, for menuconfig.
func configure(ctx context.Context, cfg config.Config, cache *fetch.Cache, in kernelInputs, w io.Writer) (configuredOptions, func(), error) {
	tarball, err := in.src.fetch(ctx, cache)
	if err != nil {
		return configuredOptions{}, nil, err
	}
	tree, err := prepareSource(ctx, cfg, tarball, in, w)
	if err != nil {
		return configuredOptions{}, nil, err
	}
	return configureTree(ctx, cfg, tree, in.buildDir(cfg), in, w)
}

// prepareSource unpacks and patches the verified tarball, or takes the tree the cache holds for it.
func prepareSource(ctx context.Context, cfg config.Config, tarball string, in kernelInputs, w io.Writer) (source.Tree, error) {
	return source.Prepare(ctx, source.TreeRequest{Trees: filepath.Join(cfg.Paths.Cache, "trees"), Tarball: tarball,
		Key: in.src.sha256, Version: in.src.version, Series: in.series, BuildDir: in.buildDir(cfg)}, w)
}

// configureTree makes the build folder's .config: the profile's base (defconfig), the requested
// options, olddefconfig. The returned function closes the build log.
func configureTree(ctx context.Context, cfg config.Config, tree source.Tree, out string, in kernelInputs, w io.Writer) (configuredOptions, func(), error) {
	opts, closeLog, err := buildOptions(cfg, tree, out, w)
	if err != nil {
		return configuredOptions{}, nil, err
	}
	if _, err := kbuild.Configure(ctx, opts, in.base, in.requested); err != nil {
		closeLog()
		return configuredOptions{}, nil, fmt.Errorf("configure kernel %s: %w", tree.Version, err)
	}
	return configuredOptions{Options: opts, Version: tree.Version}, closeLog, nil
}

// kernelInputs is everything the build depends on, known before anything is unpacked.
type kernelInputs struct {
	src       kernelSource
	series    []source.Patch
	base      string          // the make target the configuration starts from (kernel.profile)
	requested kconf.Requested // the profile's options beneath kconfig/'s fragments
	record    manifest.KernelRecord
}

// buildDir is the O= folder. It stays the same when patches or fragments change (the source tree's
// path does too, see source.Prepare), so make rebuilds only what a change reaches; each profile has
// its own, so switching back and forth rebuilds nothing.
func (in kernelInputs) buildDir(cfg config.Config) string {
	return filepath.Join(cfg.Paths.Cache, "build", in.src.sha256[:16]+"-"+cfg.Kernel.Subarch+profileSuffix(cfg))
}

// kernelProfile is where a kernel configuration starts (kernel.profile): a make target, and a
// fragment of the profile's own (in the kconfig/ folder) applied on top of it, beneath kconfig/'s
// fragments so that those win.
type kernelProfile struct {
	target   string
	fragment string // relative to kconfig/; empty for none
}

var kernelProfiles = map[string]kernelProfile{
	"defconfig": {target: "defconfig"},
	// What UML's defconfig builds and a test guest does without (debug information, reiserfs,
	// io_uring, input devices, SysV IPC, swap...) is left out: kconfig/profiles/lean.config says
	// what, docs/benchmarks.md what it saves.
	"lean": {target: "tinyconfig", fragment: filepath.Join("profiles", "lean.config")},
}

// profileSuffix names a profile other than defconfig in build folder names.
func profileSuffix(cfg config.Config) string {
	if cfg.Kernel.Profile == "" || cfg.Kernel.Profile == "defconfig" {
		return ""
	}
	return "-" + cfg.Kernel.Profile
}

// requestedOptions are the options the configuration asks for: kconfig/'s fragments (and
// .kunitconfig files) over the profile's own, with the fragments' files.
func requestedOptions(cfg config.Config) (kernelProfile, kconf.Requested, []kconf.Fragment, error) {
	profile, ok := kernelProfiles[cfg.Kernel.Profile]
	if !ok {
		return kernelProfile{}, kconf.Requested{}, nil, fmt.Errorf("kernel.profile = %q: want defconfig or lean", cfg.Kernel.Profile)
	}
	frags, err := kconf.LoadFragments(cfg.Paths.Fragments)
	if err != nil {
		return kernelProfile{}, kconf.Requested{}, nil, fmt.Errorf("read kernel config fragments: %w", err)
	}
	kunitFrags, err := kunitconfigFragments(cfg)
	if err != nil {
		return kernelProfile{}, kconf.Requested{}, nil, err
	}
	frags = append(frags, kunitFrags...)
	req, err := kconf.Merge(frags)
	if err != nil {
		return kernelProfile{}, kconf.Requested{}, nil, fmt.Errorf("kernel config fragments: %w", err)
	}
	if profile.fragment == "" {
		return profile, req, frags, nil
	}
	file := filepath.Join(cfg.Paths.Fragments, profile.fragment)
	opts, err := kconf.ParseFile(file)
	if err != nil {
		return kernelProfile{}, kconf.Requested{}, nil, fmt.Errorf("kernel.profile = %q reads its options from %s, in paths.kconfig (the repository's kconfig/ has it): %w", cfg.Kernel.Profile, profile.fragment, err)
	}
	base := kconf.Fragment{File: file, Options: opts}
	return profile, req.Beneath(base), append([]kconf.Fragment{base}, frags...), nil
}

func gatherInputs(ctx context.Context, cfg config.Config, src kernelSource) (kernelInputs, error) {
	series, err := source.ReadSeries(cfg.Paths.Patches)
	if err != nil {
		return kernelInputs{}, fmt.Errorf("read patch series: %w", err)
	}
	profile, req, frags, err := requestedOptions(cfg)
	if err != nil {
		return kernelInputs{}, err
	}
	compiler, err := kbuild.CompilerVersion(ctx)
	if err != nil {
		return kernelInputs{}, fmt.Errorf("find the compiler version: %w", err)
	}
	var patchFiles, fragFiles []string
	if _, err := os.Stat(filepath.Join(cfg.Paths.Patches, "series")); err == nil {
		patchFiles = append(patchFiles, filepath.Join(cfg.Paths.Patches, "series"))
	}
	for _, p := range series {
		patchFiles = append(patchFiles, p.File)
	}
	for _, f := range frags {
		fragFiles = append(fragFiles, f.File)
	}
	rec := manifest.KernelRecord{
		Version:       src.version,
		Source:        src.display,
		TarballSHA256: src.sha256,
		Subarch:       cfg.Kernel.Subarch,
		Compiler:      compiler,
		CCWrapper:     cfg.Kernel.CCWrapper,
		MakeTargets:   profile.target + " olddefconfig linux",
	}
	if rec.Patches, err = digests(patchFiles, cfg.Root); err != nil {
		return kernelInputs{}, err
	}
	if rec.Fragments, err = digests(fragFiles, cfg.Root); err != nil {
		return kernelInputs{}, err
	}
	// The timestamp comes from the tarball (covered by its digest); the rest of the environment is fixed.
	rec.BuildEnv = kbuild.Options{CCWrapper: cfg.Kernel.CCWrapper}.Env()[1:]
	rec.InputKey = rec.ComputeInputKey()
	return kernelInputs{src: src, series: series, base: profile.target, requested: req, record: rec}, nil
}

func buildOptions(cfg config.Config, tree source.Tree, out string, w io.Writer) (kbuild.Options, func(), error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return kbuild.Options{}, nil, err
	}
	logFile, err := os.Create(filepath.Join(out, kbuild.LogName))
	if err != nil {
		return kbuild.Options{}, nil, err
	}
	// The full output goes to the log; a terminal shows the latest line as progress.
	status := ui.NewLineStatus("make")
	opts := kbuild.Options{
		Src: tree.Dir, Out: out, Subarch: cfg.Kernel.Subarch, Jobs: cfg.Jobs(),
		CCWrapper: cfg.Kernel.CCWrapper, CCacheRemote: cfg.Kernel.CCacheRemote, Timestamp: tree.Timestamp, Log: io.MultiWriter(logFile, status), Echo: w,
	}
	return opts, func() { status.Done(); logFile.Close() }, nil
}

// installKernel puts the stripped executable, .config and System.map into dist, each atomically, and
// returns their digests. The old record is removed first so that a half-replaced dist never looks
// complete.
func installKernel(ctx context.Context, dist, linux, buildDir, srcDir string) (map[string]string, error) {
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return nil, err
	}
	if err := os.Remove(filepath.Join(dist, manifest.KernelRecordName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	tmp := filepath.Join(dist, "."+LinuxName+".tmp")
	defer os.Remove(tmp)
	if err := run.Run(ctx, run.Cmd{Args: []string{"strip", "-o", tmp, linux}}); err != nil {
		return nil, fmt.Errorf("strip the kernel: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dist, LinuxName)); err != nil {
		return nil, err
	}
	if err := files.LinkOrCopy(linux, filepath.Join(dist, DebugName)); err != nil {
		return nil, fmt.Errorf("keep the unstripped kernel: %w", err)
	}
	// Its debug information names kbuild.SourceRoot; gdb is told where that is on this machine.
	if err := files.WriteBytes(filepath.Join(dist, DebugName+".source"), []byte(srcDir+"\n"), 0o644); err != nil {
		return nil, err
	}
	for name, from := range map[string]string{ConfigName: ".config", SystemMapName: "System.map"} {
		data, err := os.ReadFile(filepath.Join(buildDir, from))
		if err != nil {
			return nil, err
		}
		if err := files.WriteBytes(filepath.Join(dist, name), data, 0o644); err != nil {
			return nil, err
		}
	}
	license, err := kernelLicense(srcDir)
	if err != nil {
		return nil, err
	}
	if err := files.WriteBytes(filepath.Join(dist, LicenseName), license, 0o644); err != nil {
		return nil, err
	}
	outputs := map[string]string{}
	for _, name := range []string{LinuxName, ConfigName, SystemMapName, LicenseName} {
		sum, err := fetch.FileSHA256(filepath.Join(dist, name))
		if err != nil {
			return nil, err
		}
		outputs[name] = sum
	}
	return outputs, nil
}

// kernelLicense is the tree's COPYING followed by the licence texts it names for the kernel.
func kernelLicense(src string) ([]byte, error) {
	var out []byte
	for i, rel := range []string{"COPYING", "LICENSES/preferred/GPL-2.0", "LICENSES/exceptions/Linux-syscall-note"} {
		data, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			if i > 0 && errors.Is(err, os.ErrNotExist) {
				continue // older trees have only COPYING
			}
			return nil, fmt.Errorf("kernel licence: %w", err)
		}
		if i > 0 {
			out = append(out, []byte("\n----------------------------------------\n"+rel+"\n\n")...)
		}
		out = append(out, data...)
	}
	return out, nil
}

func reportConfigChanges(w io.Writer, base string, changes []string) {
	fmt.Fprintf(w, "%d Kconfig options new or changed since %s (recorded in %s):\n", len(changes), base, manifest.KernelRecordName)
	for i, c := range changes {
		if i == 30 {
			fmt.Fprintf(w, "  ... and %d more\n", len(changes)-30)
			break
		}
		fmt.Fprintf(w, "  %s\n", c)
	}
}
