// Package ociimage builds a guest as an OCI image, without a container engine: the kernel, the root
// filesystem image and simple-uml's own entrypoint (cmd/simple-uml-guest), which boots them as an
// instance (build/instance) as a user who is not root. The image is written as an OCI layout folder
// and as that layout in a tar, which `podman load` reads; Push sends it to a registry and Pull takes
// one back by digest.
//
// It is built with google/go-containerregistry: the library that crane, ko and many registries'
// clients share, that writes OCI layouts and speaks to registries, with no daemon. The same inputs
// give the same digest: every layer is a tar with sorted entries, fixed times and owners
// (build/artifact), compressed by gzip with fixed settings, and the configuration holds no time but
// the release's.
package ociimage

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/run"
)

// Where things are inside the image (the rest: instance.Container*).
const (
	EntrypointPath = "/usr/bin/simple-uml-guest"
	UID            = 1000 // the user the entrypoint runs as
)

// Input is what an image holds.
type Input struct {
	Entrypoint string        // the static entrypoint program, on this host
	Kernel     string        // the kernel, on this host
	Image      string        // the root filesystem image, on this host
	Spec       instance.Spec // what the entrypoint boots; its Kernel, Image and COW are set to the image's paths
	Version    string        // the kernel's version: the image's tag
	Epoch      time.Time     // the files' time (the root filesystem image's is its own) and the image's creation time: the release's
}

// versionLabel holds the image's kernel version.
const versionLabel = "org.opencontainers.image.version"

// Ref is the name `podman load` gives the image of recipe with kernel version
// (org.opencontainers.image.ref.name).
func Ref(recipe, version string) string {
	return fmt.Sprintf("localhost/simple-uml-%s:%s", recipe, version)
}

// layerFiles are an image's layers, oldest first: what changes least goes first (the kernel's C
// library, then simple-uml's entrypoint), so that a new root filesystem (or new settings) ships only
// the layers after the kernel's.
func layerFiles(in Input, spec string, libraries []artifact.Entry, imageTime time.Time) [][]artifact.Entry {
	return [][]artifact.Entry{
		libraries,
		{
			{Name: "usr", Dir: true, Mode: 0o755}, {Name: "usr/bin", Dir: true, Mode: 0o755},
			{Name: EntrypointPath[1:], Source: in.Entrypoint, Mode: 0o755},
			{Name: "var", Dir: true, Mode: 0o755}, {Name: "var/lib", Dir: true, Mode: 0o755},
			{Name: instance.ContainerStateDir[1:], Dir: true, Mode: 0o700, Owner: UID},
			{Name: "tmp", Dir: true, Mode: 0o1777},
			{Name: instance.ContainerTempDir[1:], Dir: true, Mode: 0o700, Owner: UID},
			{Name: "opt", Dir: true, Mode: 0o755}, {Name: instance.ContainerGuestDir[1:], Dir: true, Mode: 0o755},
		},
		{{Name: instance.ContainerGuestDir[1:] + "/linux", Source: in.Kernel, Mode: 0o755}},
		{{Name: instance.ContainerGuestDir[1:] + "/image.ext4", Source: in.Image, Mode: 0o444, ModTime: imageTime}},
		{{Name: instance.ContainerSpec[1:], Source: spec, Mode: 0o444}},
	}
}

// timeOf is a time that stands for the content whose sha256 is hexDigest: UML checks the backing
// file of a COW file by its size and time alone, so two root filesystem images of one size (a
// recipe's image_size) must not share a time, and one image keeps its time whatever else changes.
func timeOf(hexDigest string) time.Time {
	seconds, _ := strconv.ParseUint(hexDigest[:8], 16, 32)
	return time.Unix(int64(seconds), 0).UTC()
}

// Write builds the image and writes it as an OCI layout, the folder LayoutDir(archive), and as that
// layout in a tar, archive (each replaced only once whole), and returns its digest: the digest of its
// manifest, by which a registry and `podman run` name it.
func Write(ctx context.Context, in Input, archive string) (v1.Hash, error) {
	if in.Spec.Options.Hostfs != "" {
		return v1.Hash{}, errors.New("boot.hostfs shares a folder of this host, which an image cannot hold: unset it (SUML_BOOT_HOSTFS)")
	}
	work, err := os.MkdirTemp(filepath.Dir(archive), ".oci"+files.TempPrefix)
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.RemoveAll(work)
	img, err := build(ctx, in, work)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := writeLayoutAndArchive(img, Ref(in.Spec.Recipe, in.Version), in.Epoch, work, archive); err != nil {
		return v1.Hash{}, err
	}
	return img.Digest()
}

// writeLayoutAndArchive writes img, named name, as an OCI layout staged in work and as a tar of it,
// archive, then puts the layout in its place beside archive.
func writeLayoutAndArchive(img v1.Image, name string, epoch time.Time, work, archive string) error {
	staged := filepath.Join(work, "layout")
	if err := writeArchive(img, name, epoch, staged, archive); err != nil {
		return err
	}
	return files.ReplaceDir(staged, LayoutDir(archive))
}

// LayoutDir is the OCI layout folder written beside archive: its name without ".tar".
func LayoutDir(archive string) string { return strings.TrimSuffix(archive, ".tar") }

// build makes the image's layers in work and the image of them.
func build(ctx context.Context, in Input, work string) (v1.Image, error) {
	imageDigest, err := digest.File(in.Image)
	if err != nil {
		return nil, err
	}
	spec := in.Spec
	spec.ImageSHA256 = imageDigest
	spec.Options.Kernel, spec.Options.Image = instance.ContainerGuestDir+"/linux", instance.ContainerGuestDir+"/image.ext4"
	spec.Options.COW, spec.Options.Console = instance.ContainerCOW, nil
	specFile := filepath.Join(work, "spec.json")
	if err := files.WriteJSON(specFile, spec); err != nil {
		return nil, err
	}
	if err := checkMachine(in.Kernel); err != nil {
		return nil, err
	}
	libraries, err := programLibraries(in.Kernel)
	if err != nil {
		return nil, fmt.Errorf("the kernel's libraries: %w", err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for i, entries := range layerFiles(in, specFile, libraries, timeOf(imageDigest)) {
		if len(entries) == 0 {
			continue // a static kernel
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		layer, err := writeLayer(filepath.Join(work, fmt.Sprintf("layer-%d.tar.gz", i)), entries, in.Epoch)
		if err != nil {
			return nil, err
		}
		what := "simple-uml: " + entries[len(entries)-1].Name
		img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: in.Epoch}, CreatedBy: what}})
		if err != nil {
			return nil, err
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS, cfg.Created = "amd64", "linux", v1.Time{Time: in.Epoch}
	cfg.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", UID, UID),
		Entrypoint: []string{EntrypointPath},
		Env:        []string{"HOME=" + instance.ContainerStateDir, "TMPDIR=" + instance.ContainerTempDir, "PATH=/usr/bin"},
		WorkingDir: instance.ContainerStateDir,
		Labels:     map[string]string{"org.opencontainers.image.title": "simple-uml " + in.Spec.Recipe, versionLabel: in.Version},
		StopSignal: "SIGTERM",
	}
	return mutate.ConfigFile(img, cfg)
}

// writeLayer writes entries as a gzip-compressed tar to path and opens it as a layer. gzip's header
// carries no name and no time, and its level is fixed.
func writeLayer(path string, entries []artifact.Entry, epoch time.Time) (v1.Layer, error) {
	err := files.WriteAtomic(path, 0o644, func(w io.Writer) error {
		zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
		if err != nil {
			return err
		}
		if err := artifact.WriteTar(zw, entries, epoch); err != nil {
			return err
		}
		return zw.Close()
	})
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromFile(path, tarball.WithMediaType(types.OCILayer))
}

// writeArchive writes img as an OCI layout in dir, then that layout as a tar to archive.
func writeArchive(img v1.Image, name string, epoch time.Time, dir, archive string) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": name})); err != nil {
		return err
	}
	var entries []artifact.Entry
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		e := artifact.Entry{Name: rel, Source: path, Mode: 0o644}
		if d.IsDir() {
			e = artifact.Entry{Name: rel, Dir: true, Mode: 0o755}
		}
		entries = append(entries, e)
		return err
	})
	if err != nil {
		return err
	}
	return files.WriteAtomic(archive, 0o644, func(w io.Writer) error { return artifact.WriteTar(w, entries, epoch) })
}

// EntrypointPackage is the entrypoint's Go package, in this module.
const EntrypointPackage = "github.com/simple-uml/simple-uml/cmd/simple-uml-guest"

// BuildEntrypoint compiles the entrypoint to dst: static (no C library in the image), for any amd64
// machine, and the same bytes from any folder with the same Go (no paths, no build id, no VCS stamp,
// none of this host's Go settings).
func BuildEntrypoint(ctx context.Context, dst string, echo io.Writer) error {
	return run.Run(ctx, run.Cmd{
		Args: []string{"go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", dst, EntrypointPackage},
		// Nothing of this host's Go settings: a GOAMD64=v3 program would not start on older nodes.
		Env:  []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOAMD64=v1", "GOFLAGS=", "GOEXPERIMENT=", "GOWORK=off"},
		Echo: echo,
	})
}
