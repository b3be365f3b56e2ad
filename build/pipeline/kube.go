package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/kube"
	"github.com/simple-uml/simple-uml/build/ociimage"
)

// Kube writes the Kubernetes manifests of boot.recipe's guest, dist/<recipe>.kube.yaml, for the
// image ref (default: the name `mage image` gives it), and returns their path.
func Kube(ctx context.Context, cfg config.Config, ref string, w io.Writer) (string, error) {
	cfg.Boot.COW = instance.ContainerCOW // the image's own: no throwaway COW folder here
	g, err := prepareGuest(cfg, w)
	if err != nil {
		return "", err
	}
	if ref == "" {
		ref = ociimage.Ref(cfg.Boot.Recipe, g.kernel.Version)
	}
	image, err := os.Stat(g.opts.Image)
	if err != nil {
		return "", err
	}
	// Room for the copy-on-write file to grow to the image's size, and the state: twice the image.
	disk := fmt.Sprintf("%dGi", max(1, (2*image.Size()+1<<30-1)>>30))
	memory, err := ident.Memory("boot.mem", g.opts.Mem)
	if err != nil {
		return "", err
	}
	data, err := kube.Manifests(kube.Guest{Name: cfg.Boot.Recipe, Image: ref, Disk: disk, UID: ociimage.UID, Entrypoint: ociimage.EntrypointPath, Memory: memory})
	if err != nil {
		return "", err
	}
	path := filepath.Join(cfg.ImagesDir(), cfg.Boot.Recipe+".kube.yaml")
	if err := files.WriteBytes(path, data, 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(w, "manifests for %s (image %s, a %s disk) written to %s\n  kubectl apply -f %s, or podman kube play %s\n", cfg.Boot.Recipe, ref, disk, path, path, path)
	return path, nil
}
