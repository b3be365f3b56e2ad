package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/ui"
)

// ReleaseDir is the folder in dist/ that mage dist writes the release to.
const ReleaseDir = "release"

// DistResult says what Dist wrote.
type DistResult struct {
	Dir      string
	Tag      string
	Assets   []string
	UpToDate bool // dist/release already held this release: nothing was written
}

// Dist turns dist/'s kernel and root filesystems into release assets in dist/release/: the kernel
// tarball, each recipe's compressed image and tarball, manifest.json and SHA256SUMS. The folder is
// replaced as a whole, so it is either the old release or the new one.
func Dist(ctx context.Context, cfg config.Config, w io.Writer) (DistResult, error) {
	start := time.Now()
	ctx, run, err := startRun(ctx, cfg, "mage dist", w)
	if err != nil {
		return DistResult{}, err
	}
	defer run.end()
	r, err := planRelease(cfg)
	if err != nil {
		return DistResult{}, err
	}
	if assets, ok := manifest.Current(r.dir, r.m); ok && cfg.Release.Previous == "" {
		fmt.Fprintf(w, "release %s is up to date in %s (same kernel, root filesystems, revision and layout); nothing to do (%s)\n",
			r.m.Tag, r.dir, time.Since(start).Round(time.Millisecond))
		return DistResult{Dir: r.dir, Tag: r.m.Tag, Assets: assets, UpToDate: true}, nil
	}
	if r.stage, err = os.MkdirTemp(cfg.Paths.Dist, ".release.tmp-"); err != nil {
		return DistResult{}, err
	}
	defer os.RemoveAll(r.stage)
	os.Chmod(r.stage, 0o755)
	fmt.Fprintf(w, "dist: release %s (SOURCE_DATE_EPOCH=%d)\n", r.m.Tag, r.epoch.Unix())
	timer := newStepTimer()
	if err := runSteps(ctx, timer, r.steps()...); err != nil {
		return DistResult{}, err
	}
	if err := files.ReplaceDir(r.stage, r.dir); err != nil {
		return DistResult{}, err
	}
	all := append(r.assets, manifest.ManifestName, artifact.SumsName)
	sort.Strings(all)
	for _, a := range all {
		fi, _ := os.Stat(filepath.Join(r.dir, a))
		fmt.Fprintf(w, "  %-60s %s\n", a, humanSize(fi))
	}
	run.log("dist", r.m.Tag, start, timer.String())
	return DistResult{Dir: r.dir, Tag: r.m.Tag, Assets: all}, nil
}

// releaseFormat is the version of the release's layout: the parts below and what each writes. It is
// in manifest.json and in the key that says whether dist/release is up to date, with the names of
// the assets, so a release written before a change of layout is written again.
const releaseFormat = 2

// releasePart is one step of mage dist: the assets it writes, named before anything runs.
type releasePart struct {
	step   string
	assets func(*releaseBuild) []string
	write  func(*releaseBuild, context.Context) error
}

// releaseParts is the release's layout, in the order the steps run; the manifest and SHA256SUMS,
// which list all of them, come last.
var releaseParts = []releasePart{
	{"kernel tarball", (*releaseBuild).kernelAssets, (*releaseBuild).kernelTarball},
	{"root filesystems", (*releaseBuild).rootfsAssetNames, (*releaseBuild).rootfsAssets},
	{"SBOM", (*releaseBuild).sbomAssets, (*releaseBuild).sbom},
	{"notes", func(*releaseBuild) []string { return []string{manifest.NotesName} }, (*releaseBuild).notes},
}

// steps are the release's parts as steps, then the manifest and sums.
func (r *releaseBuild) steps() []step {
	var steps []step
	for _, p := range releaseParts {
		steps = append(steps, step{name: p.step, run: func(ctx context.Context) error { return p.write(r, ctx) }})
	}
	return append(steps, step{name: "manifest and sums", run: r.manifestAndSums})
}

// releaseBuild is one run of mage dist: the manifest it writes and the folder it stages it in.
type releaseBuild struct {
	cfg     config.Config
	m       manifest.Manifest
	epoch   time.Time
	version string   // the tag without its v
	dir     string   // dist/release
	stage   string   // the folder the release is written in before it replaces dir
	assets  []string // every asset the parts write, in order
}

// planRelease reads dist/'s kernel and root filesystem records, checked against their files, into
// the manifest of the release they make.
func planRelease(cfg config.Config) (*releaseBuild, error) {
	kernel, err := manifest.ReadKernelRecord(cfg.Paths.Dist)
	if err != nil {
		return nil, fmt.Errorf("no kernel in %s (run `go tool mage kernel`): %w", cfg.Paths.Dist, err)
	}
	if err := kernel.CheckOutputs(cfg.Paths.Dist); err != nil {
		return nil, fmt.Errorf("dist/ does not hold the kernel its record describes (rerun `go tool mage kernel`): %w", err)
	}
	kernel.CCache = nil // how the build went, which differs from one machine to the next
	if kernel.Tree != nil {
		// A release is a kernel.org release, verified: not whatever a work tree held.
		return nil, fmt.Errorf("%s holds a kernel built from your tree %s (kernel.tree): releases are built from kernel.org's tarballs; unset kernel.tree and run `go tool mage kernel`", cfg.Paths.Dist, kernel.Tree.Path)
	}
	roots, err := manifest.ReadRootfsRecords(cfg.ImagesDir())
	if err != nil {
		return nil, err
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("no root filesystem in %s: run `go tool mage rootfs` first", cfg.ImagesDir())
	}
	epoch, err := releaseEpoch(kernel)
	if err != nil {
		return nil, err
	}
	m := manifest.Manifest{Tag: manifest.Tag(kernel.Version, cfg.Release.Revision), Revision: cfg.Release.Revision, SourceDateEpoch: epoch.Unix(),
		Kernel: *kernel, Assets: map[string]string{}}
	for _, root := range roots {
		// The manifest describes outputs by content; when dist's copy was written is not part of it.
		outputs := map[string]manifest.Output{}
		for name, o := range root.Outputs {
			o.MtimeNS = 0
			outputs[name] = o
		}
		root.Outputs = outputs
		m.Rootfs = append(m.Rootfs, root)
	}
	r := &releaseBuild{cfg: cfg, m: m, epoch: epoch, version: strings.TrimPrefix(m.Tag, "v"), dir: filepath.Join(cfg.Paths.Dist, ReleaseDir)}
	r.m.Format = releaseFormat
	for _, p := range releaseParts {
		for _, name := range p.assets(r) {
			r.assets = append(r.assets, name)
			r.m.Assets[name] = "" // its digest once written: the names are part of the release's key
		}
	}
	return r, nil
}

func (r *releaseBuild) kernelAssets() []string {
	return []string{manifest.KernelAsset(r.version, r.m.Kernel.Subarch)}
}

// kernelTarball packs the kernel stage's outputs (the kernel, its config, System.map and licence) as
// a reproducible tar.xz.
func (r *releaseBuild) kernelTarball(context.Context) error {
	var entries []artifact.Entry
	for _, o := range kernel.Outputs {
		entries = append(entries, artifact.Entry{Name: o.InRelease, Source: filepath.Join(r.cfg.Paths.Dist, o.Name), Mode: int64(o.Mode)})
	}
	if err := artifact.WriteFile(filepath.Join(r.stage, r.kernelAssets()[0]), artifact.Xz, func(out io.Writer) error {
		return artifact.WriteTar(out, entries, r.epoch)
	}); err != nil {
		return fmt.Errorf("kernel tarball: %w", err)
	}
	return nil
}

// rootfsAssetNames are each recipe's compressed image and tarball.
func (r *releaseBuild) rootfsAssetNames() []string {
	var names []string
	for _, root := range r.m.Rootfs {
		base := manifest.RootfsAssetBase(root.Recipe, root.Arch, r.version)
		names = append(names, base+".ext4.zst", base+".tar.zst")
	}
	return names
}

// rootfsAssets compresses each image and ships each tarball as it is (already a reproducible
// .tar.zst).
func (r *releaseBuild) rootfsAssets(ctx context.Context) error {
	for _, root := range r.m.Rootfs {
		if err := ctx.Err(); err != nil {
			return err
		}
		image, tarball, _ := manifest.RootfsFiles(r.cfg.ImagesDir(), root.Recipe)
		base := manifest.RootfsAssetBase(root.Recipe, root.Arch, r.version)
		if err := artifact.WriteFile(filepath.Join(r.stage, base+".ext4.zst"), artifact.Zstd, func(out io.Writer) error {
			return files.Stream(out, image)
		}); err != nil {
			return fmt.Errorf("rootfs %s image: %w", root.Recipe, err)
		}
		if err := files.LinkOrCopy(tarball, filepath.Join(r.stage, base+".tar.zst")); err != nil {
			return err
		}
	}
	return nil
}

func (r *releaseBuild) sbomAssets() []string { return []string{manifest.SBOMAsset(r.version)} }

func (r *releaseBuild) sbom(context.Context) error {
	return files.WriteAtomic(filepath.Join(r.stage, r.sbomAssets()[0]), 0o644, func(w io.Writer) error {
		return artifact.WriteSBOM(w, "simple-uml", r.m.Tag, r.epoch, r.m.SBOMComponents(r.version))
	})
}

// notes writes the release notes, compared with the previous release: release.previous, or the
// release dist/ held before when it was another tag.
func (r *releaseBuild) notes(context.Context) error {
	prevPath := r.cfg.Release.Previous
	if prevPath == "" {
		prevPath = filepath.Join(r.dir, manifest.ManifestName)
	}
	prev, err := manifest.Read(prevPath)
	if err != nil {
		return fmt.Errorf("previous release: %w", err)
	}
	if prev != nil && prev.Tag == r.m.Tag && r.cfg.Release.Previous == "" {
		prev = nil
	}
	return os.WriteFile(filepath.Join(r.stage, manifest.NotesName), []byte(manifest.Notes(r.m, prev)), 0o644)
}

// manifestAndSums hashes the assets into the manifest, writes it, and writes SHA256SUMS of all.
func (r *releaseBuild) manifestAndSums(context.Context) error {
	sums := artifact.Sums{}
	if err := sums.Hash(r.stage, r.assets...); err != nil {
		return fmt.Errorf("an asset of the release's layout was not written: %w", err)
	}
	for n, s := range sums {
		r.m.Assets[n] = s
	}
	data, err := json.MarshalIndent(r.m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.stage, manifest.ManifestName), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := sums.Hash(r.stage, manifest.ManifestName); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(r.stage, artifact.SumsName), sums.Bytes(), 0o644)
}

func humanSize(fi os.FileInfo) string {
	if fi == nil {
		return "?"
	}
	return ui.Size(fi.Size())
}

// releaseEpoch is SOURCE_DATE_EPOCH when set, else the kernel's build timestamp (its release time).
func releaseEpoch(k *manifest.KernelRecord) (time.Time, error) {
	if t, ok, err := config.SourceDateEpoch(os.Getenv); ok || err != nil {
		return t, err
	}
	return k.BuildTime()
}
