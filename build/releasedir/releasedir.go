// Package releasedir is the dist stage: it turns dist/'s kernel and root filesystems, checked against
// their records, into a release in dist/release/ (the kernel tarball, each recipe's compressed image
// and tarball, an SBOM, release notes, manifest.json and SHA256SUMS). The release's layout is a table
// of parts, each naming its assets before anything runs, so the names are in the key that says
// whether dist/release is up to date. A release is staged beside dist/release and replaces it as a
// whole. It builds releases only from kernel.org kernels; publishing them is build/release's.
package releasedir

import (
	"context"
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
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/ui"
)

// Name is the folder in dist/ that holds the release.
const Name = "release"

// StagePrefix starts the name of the folder a release is staged in, in dist/, before it replaces
// dist/release; a killed run leaves it behind, and pipeline's sweep of dist removes it.
const StagePrefix = ".release.tmp-"

// Build is one writing of dist/release: the manifest it writes and the folder it stages it in.
type Build struct {
	Dir      string            // dist/release
	Manifest manifest.Manifest // its asset digests are filled in by the last step
	Epoch    time.Time         // SOURCE_DATE_EPOCH: the time of every file in the archives
	cfg      config.Config
	version  string   // the tag without its v
	parts    []Part   // the layout the assets were named by
	assets   []string // every asset the parts write, in order
	stage    string   // the folder the release is written in before it replaces Dir
}

// Plan reads dist/'s kernel and root filesystem records, checked against their files, into the
// manifest of the release they make, with the names of all its assets.
func Plan(cfg config.Config) (*Build, error) {
	kernel, roots, err := readRecords(cfg)
	if err != nil {
		return nil, err
	}
	epoch, err := releaseEpoch(kernel)
	if err != nil {
		return nil, err
	}
	m := manifest.Manifest{Format: Format, Tag: manifest.Tag(kernel.Version, cfg.Release.Revision), Revision: cfg.Release.Revision,
		SourceDateEpoch: epoch.Unix(), Kernel: *kernel, Rootfs: roots, Assets: map[string]string{}}
	b := &Build{Dir: filepath.Join(cfg.Paths.Dist, Name), Manifest: m, Epoch: epoch, cfg: cfg, version: strings.TrimPrefix(m.Tag, "v"), parts: layout}
	for _, p := range b.parts {
		for _, name := range p.Assets(b) {
			b.assets = append(b.assets, name)
			b.Manifest.Assets[name] = "" // its digest once written: the names are part of the release's key
		}
	}
	return b, nil
}

// readRecords reads dist/'s kernel record, checked against its files, and the root filesystems'
// records, as a release describes them.
func readRecords(cfg config.Config) (*manifest.KernelRecord, []manifest.RootfsRecord, error) {
	kernel, err := manifest.ReadKernelRecord(cfg.Paths.Dist)
	if err != nil {
		return nil, nil, fmt.Errorf("no kernel in %s (run `go tool mage kernel`): %w", cfg.Paths.Dist, err)
	}
	if err := kernel.CheckOutputs(cfg.Paths.Dist); err != nil {
		return nil, nil, fmt.Errorf("dist/ does not hold the kernel its record describes (rerun `go tool mage kernel`): %w", err)
	}
	kernel.CCache = nil // how the build went, which differs from one machine to the next
	if kernel.Tree != nil {
		// A release is a kernel.org release, verified: not whatever a work tree held.
		return nil, nil, fmt.Errorf("%s holds a kernel built from your tree %s (kernel.tree): releases are built from kernel.org's tarballs; unset kernel.tree and run `go tool mage kernel`", cfg.Paths.Dist, kernel.Tree.Path)
	}
	roots, err := manifest.ReadRootfsRecords(cfg.ImagesDir())
	if err != nil {
		return nil, nil, err
	}
	if len(roots) == 0 {
		return nil, nil, fmt.Errorf("no root filesystem in %s: run `go tool mage rootfs` first", cfg.ImagesDir())
	}
	for i, root := range roots {
		// The manifest describes outputs by content; when dist's copy was written is not part of it.
		outputs := map[string]manifest.Output{}
		for name, o := range root.Outputs {
			o.MtimeNS = 0
			outputs[name] = o
		}
		roots[i].Outputs = outputs
	}
	return kernel, roots, nil
}

// releaseEpoch is SOURCE_DATE_EPOCH when set, else the kernel's build timestamp (its release time).
func releaseEpoch(k *manifest.KernelRecord) (time.Time, error) {
	if t, ok, err := config.SourceDateEpoch(os.Getenv); ok || err != nil {
		return t, err
	}
	return k.BuildTime()
}

// Current reports whether dist/release already holds this release, and lists its files. A release
// compared with a previous one named in release.previous is always written again: its notes may
// differ.
func (b *Build) Current() ([]string, bool) {
	if b.cfg.Release.Previous != "" {
		return nil, false
	}
	return manifest.Current(b.Dir, b.Manifest)
}

// Open makes the folder the release is staged in; Close removes what is left of it.
func (b *Build) Open() error {
	stage, err := os.MkdirTemp(b.cfg.Paths.Dist, StagePrefix)
	if err != nil {
		return err
	}
	b.stage = stage
	return os.Chmod(stage, 0o755)
}

// Close removes the staging folder, when a step failed before Replace moved it into place.
func (b *Build) Close() {
	if b.stage != "" {
		os.RemoveAll(b.stage)
	}
}

// Replace puts the staged release in the place of dist/release and lists its files.
func (b *Build) Replace() ([]string, error) {
	if err := files.ReplaceDir(b.stage, b.Dir); err != nil {
		return nil, err
	}
	b.stage = ""
	all := append(append([]string{}, b.assets...), manifest.ManifestName, artifact.SumsName)
	sort.Strings(all)
	return all, nil
}

// List prints the release's files in dir with their sizes.
func List(w io.Writer, dir string, names []string) {
	for _, name := range names {
		fi, _ := os.Stat(filepath.Join(dir, name))
		fmt.Fprintf(w, "  %-60s %s\n", name, humanSize(fi))
	}
}

func humanSize(fi os.FileInfo) string {
	if fi == nil {
		return "?"
	}
	return ui.Size(fi.Size())
}

// Step is one named step of writing the release, for the target's step runner.
type Step struct {
	Name string
	Run  func(context.Context) error
}

// Steps are the layout's parts in order, then the manifest and SHA256SUMS, which list them all.
// They write into the staging folder Open made.
func (b *Build) Steps() []Step {
	var steps []Step
	for _, p := range b.parts {
		steps = append(steps, Step{Name: p.Name, Run: func(ctx context.Context) error { return p.Write(b, ctx) }})
	}
	return append(steps, Step{Name: "manifest and sums", Run: b.manifestAndSums})
}
