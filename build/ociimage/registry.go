package ociimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/simple-uml/simple-uml/build/files"
)

// Push sends the image of the layout folder dir (Write's) to ref, a registry's repository and tag,
// and returns its digest. It is idempotent: blobs the registry has already are not sent again, and
// the tag then names the same manifest. A registry on loopback is spoken to over plain HTTP, any
// other over HTTPS only.
func Push(ctx context.Context, dir, ref string, auth authn.Authenticator) (v1.Hash, error) {
	img, err := layoutImage(dir)
	if err != nil {
		return v1.Hash{}, err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image reference %q: %w (write it registry/repository:tag)", ref, err)
	}
	if err := remote.Write(tag, img, remote.WithContext(ctx), remote.WithAuth(auth)); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return img.Digest()
}

// layoutImage is the one image of the layout folder dir.
func layoutImage(dir string) (v1.Image, error) {
	index, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w (write it with `go tool mage image`)", dir, err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(manifest.Manifests) != 1 {
		return nil, fmt.Errorf("image layout %s holds %d images, want the one `go tool mage image` writes", dir, len(manifest.Manifests))
	}
	return index.Image(manifest.Manifests[0].Digest)
}

// Pull fetches the image ref names by digest (registry/repository@sha256:...) and writes it as Write
// does, an OCI layout beside archive and archive, named as Write names recipe's image of the
// kernel version it is labelled with (Ref) for `podman load`: what Write wrote comes back byte for
// byte. The manifest must have that digest and every blob the digest its manifest gives: a registry
// that serves anything else is refused before archive is written.
func Pull(ctx context.Context, ref, archive, recipe string, auth authn.Authenticator) error {
	digest, err := name.NewDigest(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w (take an image by digest: registry/repository@sha256:<64 hex digits>)", ref, err)
	}
	img, err := remote.Image(digest, remote.WithContext(ctx), remote.WithAuth(auth))
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	work, err := os.MkdirTemp(filepath.Dir(archive), ".oci"+files.TempPrefix)
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := writeLayoutAndArchive(img, Ref(recipe, cfg.Config.Labels[versionLabel]), cfg.Created.Time, work, archive); err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	return nil
}

// KernelVersion is the kernel version the image of the layout folder dir was written for (its
// org.opencontainers.image.version label).
func KernelVersion(dir string) (string, error) {
	img, err := layoutImage(dir)
	if err != nil {
		return "", err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("image layout %s: %w", dir, err)
	}
	return cfg.Config.Labels[versionLabel], nil
}
