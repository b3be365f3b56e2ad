package releasedir

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// Format is the version of the release's layout: the parts below and what each writes. It is in
// manifest.json and in the key that says whether dist/release is up to date, with the names of the
// assets, so a release written before a change of layout is written again; mage fetch refuses a
// release of a newer format than it knows.
const Format = 2

// Part is one step of writing the release: the assets it writes, named before anything runs.
type Part struct {
	Name   string
	Assets func(*Build) []string
	Write  func(*Build, context.Context) error
}

// layout is the release's layout, in the order the steps run; the manifest and SHA256SUMS, which
// list all of them, come last.
var layout = []Part{
	{"kernel tarball", (*Build).kernelAssets, (*Build).kernelTarball},
	{"root filesystems", (*Build).rootfsAssetNames, (*Build).rootfsAssets},
	{"SBOM", (*Build).sbomAssets, (*Build).sbom},
	{"notes", func(*Build) []string { return []string{manifest.NotesName} }, (*Build).notes},
}

func (b *Build) kernelAssets() []string {
	return []string{manifest.KernelAsset(b.version, b.Manifest.Kernel.Subarch)}
}

// kernelTarball packs the kernel stage's outputs (the kernel, its config, System.map and licence) as
// a reproducible tar.xz.
func (b *Build) kernelTarball(context.Context) error {
	var entries []artifact.Entry
	for _, o := range kernel.Outputs {
		entries = append(entries, artifact.Entry{Name: o.InRelease, Source: filepath.Join(b.cfg.Paths.Dist, o.Name), Mode: int64(o.Mode)})
	}
	if err := artifact.WriteFile(filepath.Join(b.stage, b.kernelAssets()[0]), artifact.Xz, func(out io.Writer) error {
		return artifact.WriteTar(out, entries, b.Epoch)
	}); err != nil {
		return fmt.Errorf("kernel tarball: %w", err)
	}
	return nil
}

// rootfsAssetNames are each recipe's compressed image and tarball.
func (b *Build) rootfsAssetNames() []string {
	var names []string
	for _, root := range b.Manifest.Rootfs {
		base := manifest.RootfsAssetBase(root.Recipe, root.Arch, b.version)
		names = append(names, base+".ext4.zst", base+".tar.zst")
	}
	return names
}

// rootfsAssets compresses each image and ships each tarball as it is (already a reproducible
// .tar.zst).
func (b *Build) rootfsAssets(ctx context.Context) error {
	for _, root := range b.Manifest.Rootfs {
		if err := ctx.Err(); err != nil {
			return err
		}
		image, tarball, _ := manifest.RootfsFiles(b.cfg.ImagesDir(), root.Recipe)
		base := manifest.RootfsAssetBase(root.Recipe, root.Arch, b.version)
		if err := artifact.WriteFile(filepath.Join(b.stage, base+".ext4.zst"), artifact.Zstd, func(out io.Writer) error {
			return files.Stream(out, image)
		}); err != nil {
			return fmt.Errorf("rootfs %s image: %w", root.Recipe, err)
		}
		if err := files.LinkOrCopy(tarball, filepath.Join(b.stage, base+".tar.zst")); err != nil {
			return err
		}
	}
	return nil
}

func (b *Build) sbomAssets() []string { return []string{manifest.SBOMAsset(b.version)} }

func (b *Build) sbom(context.Context) error {
	return files.WriteAtomic(filepath.Join(b.stage, b.sbomAssets()[0]), 0o644, func(w io.Writer) error {
		return artifact.WriteSBOM(w, "simple-uml", b.Manifest.Tag, b.Epoch, b.Manifest.SBOMComponents(b.version))
	})
}

// notes writes the release notes, compared with the previous release: release.previous, or the
// release dist/ held before when it was another tag.
func (b *Build) notes(context.Context) error {
	prevPath := b.cfg.Release.Previous
	if prevPath == "" {
		prevPath = filepath.Join(b.Dir, manifest.ManifestName)
	}
	prev, err := manifest.Read(prevPath)
	if err != nil {
		return fmt.Errorf("previous release: %w", err)
	}
	if prev != nil && prev.Tag == b.Manifest.Tag && b.cfg.Release.Previous == "" {
		prev = nil
	}
	return os.WriteFile(filepath.Join(b.stage, manifest.NotesName), []byte(manifest.Notes(b.Manifest, prev)), 0o644)
}

// manifestAndSums hashes the assets into the manifest, writes it, and writes SHA256SUMS of all.
func (b *Build) manifestAndSums(context.Context) error {
	sums := artifact.Sums{}
	if err := sums.Hash(b.stage, b.assets...); err != nil {
		return fmt.Errorf("an asset of the release's layout was not written: %w", err)
	}
	for n, s := range sums {
		b.Manifest.Assets[n] = s
	}
	data, err := json.MarshalIndent(b.Manifest, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b.stage, manifest.ManifestName), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := sums.Hash(b.stage, manifest.ManifestName); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(b.stage, artifact.SumsName), sums.Bytes(), 0o644)
}
