package kernel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// InstallFetched installs a published release's kernel and the root filesystem image it boots
// (root, one of m's) into dist, as Install and mage rootfs leave them: kernelTar and imageZst are
// the release's assets, already checked against its SHA256SUMS. Both are unpacked under a temporary
// folder in dist (a killed run's is swept away by the next) and checked against m's records before
// anything is renamed: nothing is installed unless everything verifies.
func InstallFetched(ctx context.Context, dist string, m *manifest.Manifest, root *manifest.RootfsRecord, kernelTar, imageZst string) error {
	if err := os.MkdirAll(dist, 0o755); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(dist, ".fetch.tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := unpackKernel(kernelTar, stage, m); err != nil {
		return err
	}
	image, _, record := manifest.RootfsFiles(dist, root.Recipe)
	stagedImage := filepath.Join(stage, filepath.Base(image))
	rec, err := unpackImage(ctx, imageZst, stagedImage, *root)
	if err != nil {
		return err
	}
	// The old records go first and the new ones are written last: a half-replaced dist/ never looks
	// complete.
	for _, old := range []string{filepath.Join(dist, manifest.KernelRecordName), record} {
		if err := os.Remove(old); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	for _, o := range Outputs {
		if err := os.Rename(filepath.Join(stage, o.Name), filepath.Join(dist, o.Name)); err != nil {
			return err
		}
	}
	if err := os.Rename(stagedImage, image); err != nil {
		return err
	}
	if err := files.WriteJSON(filepath.Join(dist, manifest.KernelRecordName), m.Kernel); err != nil {
		return err
	}
	return files.WriteJSON(record, rec)
}

// unpackKernel unpacks the release's kernel tarball into dir under the outputs' names in dist, and
// checks them against the release's kernel record. A tarball that lacks an output of this checkout's
// layout (one of an older release format) is refused: dist/ would lack what boot needs.
func unpackKernel(tarball, dir string, m *manifest.Manifest) error {
	if err := artifact.ExtractFiles(tarball, artifact.Xz, dir, InRelease()); err != nil {
		return fmt.Errorf("kernel tarball: %w", err)
	}
	if err := m.Kernel.CheckOutputs(dir); err != nil {
		return fmt.Errorf("kernel tarball does not match the manifest: %w", err)
	}
	for _, o := range Outputs {
		if _, err := os.Lstat(filepath.Join(dir, o.Name)); err != nil {
			return fmt.Errorf("release %s's kernel tarball has no %s (release format %d): fetch a release made by this simple-uml", m.Tag, o.InRelease, m.Format)
		}
	}
	return nil
}

// unpackImage decompresses the release's image to path, no bigger than root's record says, checks
// its digest against that record, and returns the record dist/ keeps for it: the image alone (the
// tarball stays on the release), with the time it was written.
func unpackImage(ctx context.Context, imageZst, path string, root manifest.RootfsRecord) (manifest.RootfsRecord, error) {
	name := filepath.Base(path)
	want := root.Outputs[name]
	if err := artifact.DecompressSparse(ctx, imageZst, artifact.Zstd, path, want.Size); err != nil {
		return root, fmt.Errorf("image: %w", err)
	}
	out, err := manifest.Describe(path)
	if err != nil {
		return root, err
	}
	if want.SHA256 != out.SHA256 {
		return root, fmt.Errorf("image %s does not match the manifest (sha256 %s, want %s)", name, out.SHA256, want.SHA256)
	}
	// A rename keeps the time it was written, which the record's check compares.
	root.Outputs = map[string]manifest.Output{name: out}
	return root, nil
}
