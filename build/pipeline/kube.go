package pipeline

import (
	"cmp"
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
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/ociimage"
	"github.com/simple-uml/simple-uml/build/uml"
	"github.com/simple-uml/simple-uml/build/usernet"
)

// Kube writes the Kubernetes manifests of boot.recipe's guest, dist/<recipe>.kube.yaml, or with
// labName of that lab's guests (a workload each), dist/<lab>.lab.kube.yaml, and returns their path.
// ref is the image every workload pulls (default: the name `mage image` gives each one's recipe's).
func Kube(ctx context.Context, cfg config.Config, labName, ref string, w io.Writer) (string, error) {
	if labName != "" {
		return kubeLab(cfg, labName, ref, w)
	}
	cfg.Boot.COW = instance.ContainerCOW // the image's own: no throwaway COW folder here
	g, err := prepareGuest(cfg, w)
	if err != nil {
		return "", err
	}
	guest, err := kubeGuest(cfg.Boot.Recipe, g.opts.Image, g.opts.Mem, cmp.Or(ref, ociimage.Ref(cfg.Boot.Recipe, g.kernel.Version)))
	if err != nil {
		return "", err
	}
	if g.opts.Net != nil {
		guest.Forwards = hostPorts(g.opts.Net.Forwards)
	}
	data, err := kube.Manifests(guest)
	if err != nil {
		return "", err
	}
	return writeManifests(cfg.ImagesDir(), cfg.Boot.Recipe+".kube.yaml", data, fmt.Sprintf("%s (image %s, a %s disk)", cfg.Boot.Recipe, guest.Image, guest.Disk), w)
}

// kubeLab writes the manifests of lab name: each guest runs its recipe's image.
func kubeLab(cfg config.Config, name, ref string, w io.Writer) (string, error) {
	l, err := lab.Load(cfg.Paths.Labs, name)
	if err != nil {
		return "", err
	}
	record, err := manifest.ReadKernelRecord(cfg.Paths.Dist)
	if err != nil {
		return "", fmt.Errorf("kernel record: %w (build it with `go tool mage kernel`)", err)
	}
	guests := map[string]kube.Guest{}
	recipes := map[string]bool{}
	for _, g := range l.Guests {
		if g.Image != "" {
			return "", fmt.Errorf("lab %s: guest %s boots the image file %s; on a cluster each guest runs its recipe's container image (`go tool mage image`): give it a recipe", name, g.Name, g.Image)
		}
		recipe := cmp.Or(g.Recipe, cfg.Boot.Recipe)
		recipes[recipe] = true
		image, _, _, err := distImage(cfg, recipe)
		if err != nil {
			return "", err
		}
		guest, err := kubeGuest(recipe, image, g.Mem, cmp.Or(ref, ociimage.Ref(recipe, record.Version)))
		if err != nil {
			return "", fmt.Errorf("lab %s, guest %s: %w", name, g.Name, err)
		}
		forwards, _ := usernet.ParseForwards(g.Forward) // checked by Load
		guest.Forwards = hostPorts(forwards)
		guests[g.Name] = guest
	}
	if ref != "" && len(recipes) > 1 {
		return "", fmt.Errorf("lab %s: its guests run %d recipes' images; -image names one image for them all: leave it out (each guest runs `mage image`'s image of its recipe)", name, len(recipes))
	}
	data, err := kube.LabManifests(l, guests)
	if err != nil {
		return "", err
	}
	return writeManifests(cfg.ImagesDir(), name+".lab.kube.yaml", data, fmt.Sprintf("lab %s (%d guests, a workload each, LANs carried over VXLAN between their pods)", name, len(l.Guests)), w)
}

// kubeGuest is the workload of a guest of recipe that boots image with mem.
func kubeGuest(recipe, image, mem, ref string) (kube.Guest, error) {
	fi, err := os.Stat(image)
	if err != nil {
		return kube.Guest{}, err
	}
	memory, err := ident.Memory("guest memory", cmp.Or(mem, uml.DefaultMem))
	if err != nil {
		return kube.Guest{}, err
	}
	// Room for the copy-on-write file to grow to the image's size, and the state: twice the image.
	disk := fmt.Sprintf("%dGi", max(1, (2*fi.Size()+1<<30-1)>>30))
	return kube.Guest{Name: recipe, Image: ref, Disk: disk, UID: ociimage.UID, Entrypoint: ociimage.EntrypointPath, Memory: memory}, nil
}

// hostPorts are the ports forwards listen on.
func hostPorts(forwards []usernet.Forward) []int {
	var ports []int
	for _, f := range forwards {
		ports = append(ports, f.Host)
	}
	return ports
}

// writeManifests writes data to folder/name and says how to apply it.
func writeManifests(folder, name string, data []byte, what string, w io.Writer) (string, error) {
	path := filepath.Join(folder, name)
	if err := files.WriteBytes(path, data, 0o644); err != nil {
		return "", err
	}
	fmt.Fprintf(w, "manifests for %s written to %s\n  kubectl apply -f %s, or podman kube play %s\n", what, path, path, path)
	return path, nil
}
