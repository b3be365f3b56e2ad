package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/ociimage"
)

// Image writes dist/'s pair for boot.recipe as an OCI image, whose entrypoint boots it as `mage up`
// does: dist/<recipe>.oci (a layout) and dist/<recipe>.oci.tar. It returns the image's digest.
func Image(ctx context.Context, cfg config.Config, w io.Writer) (string, error) {
	cfg.Boot.COW = instance.ContainerCOW // the instance's own, in the image's state folder
	g, err := prepareGuest(cfg, w)
	if err != nil {
		return "", err
	}
	epoch, err := g.kernel.BuildTime()
	if err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(cfg.ImagesDir(), ".image"+files.TempPrefix) // beside the archive: swept by the next run if killed
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	entrypoint := filepath.Join(work, "simple-uml-guest")
	if err := ociimage.BuildEntrypoint(ctx, entrypoint, w); err != nil {
		return "", err
	}
	spec := instance.Spec{Name: cfg.Boot.Recipe, Recipe: cfg.Boot.Recipe, Ready: cfg.Boot.Ready, Restart: instance.RestartNo, Options: g.opts, RootPassword: g.recipe.RootPassword}
	archive := filepath.Join(cfg.ImagesDir(), cfg.Boot.Recipe+".oci.tar")
	in := ociimage.Input{Entrypoint: entrypoint, Kernel: g.opts.Kernel, Image: g.opts.Image, Spec: spec, Version: g.kernel.Version, Epoch: epoch}
	digest, err := ociimage.Write(ctx, in, archive)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", archive, err)
	}
	ref := ociimage.Ref(cfg.Boot.Recipe, g.kernel.Version)
	fmt.Fprintf(w, "image %s %s written to %s (and as an OCI layout, %s)\n  podman load -i %s && podman run --rm -it %s\n", ref, digest, archive, ociimage.LayoutDir(archive), archive, ref)
	return digest.String(), nil
}
