package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/ociimage"
	"github.com/simple-uml/simple-uml/build/release"
	"github.com/simple-uml/simple-uml/build/releasedir"
)

// Push sends the image `mage image` wrote of boot.recipe to release.registry as
// <registry>/<GITHUB_REPOSITORY>/<recipe>:<dist/release's tag>, with GITHUB_TOKEN (ghcr.io takes it
// with packages:write), and returns the image's reference by digest. The image must be of the
// release's kernel.
func Push(ctx context.Context, cfg config.Config, getenv func(string) string, w io.Writer) (string, error) {
	m, err := manifest.Verify(filepath.Join(cfg.Paths.Dist, releasedir.Name))
	if err != nil {
		return "", fmt.Errorf("%w\n(run `go tool mage dist` first: the image is pushed under the release's tag)", err)
	}
	gh, err := release.FromEnv(getenv, "", io.Discard) // checks GITHUB_REPOSITORY
	if err != nil {
		return "", err
	}
	layout := ociimage.LayoutDir(filepath.Join(cfg.ImagesDir(), cfg.Boot.Recipe+".oci.tar"))
	if version, err := ociimage.KernelVersion(layout); err != nil {
		return "", err
	} else if version != m.Kernel.Version {
		return "", fmt.Errorf("%s holds kernel %s, the release %s kernel %s: write it again with `go tool mage image`", layout, version, m.Tag, m.Kernel.Version)
	}
	repository := strings.ToLower(cfg.Release.Registry + "/" + gh.Owner + "/" + gh.Repo + "/" + cfg.Boot.Recipe)
	digest, err := ociimage.Push(ctx, layout, repository+":"+m.Tag, registryAuth(getenv))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(w, "pushed %s:%s, %s@%s\n", repository, m.Tag, repository, digest)
	return repository + "@" + digest.String(), nil
}

// registryAuth is GITHUB_TOKEN (ghcr.io takes it, with GITHUB_ACTOR as the user), or nothing.
func registryAuth(getenv func(string) string) authn.Authenticator {
	if token := getenv("GITHUB_TOKEN"); token != "" {
		return &authn.Basic{Username: cmp.Or(getenv("GITHUB_ACTOR"), "simple-uml"), Password: token}
	}
	return authn.Anonymous
}

// Pull fetches the image ref names by digest (registry/repository@sha256:...), checking the manifest
// and every blob against it, and writes it to dist/ as `mage image` does: <name>.oci.tar and its
// layout folder, name being the repository's last part (the recipe, for an image `mage push` sent).
// GITHUB_TOKEN goes to release.registry only. It returns the archive's path.
func Pull(ctx context.Context, cfg config.Config, ref string, getenv func(string) string, w io.Writer) (string, error) {
	repository, _, byDigest := strings.Cut(ref, "@")
	if !byDigest {
		return "", fmt.Errorf("image reference %q: take an image by digest, registry/repository@sha256:<64 hex digits> (`mage push` prints it)", ref)
	}
	name := path.Base(repository)
	if err := ident.Name("the image's name (the last part of its repository)", name); err != nil {
		return "", err
	}
	archive := filepath.Join(cfg.ImagesDir(), name+".oci.tar")
	// The token is for the release's registry: a reference to another gets none.
	var auth authn.Authenticator = authn.Anonymous
	if registry, _, _ := strings.Cut(repository, "/"); strings.EqualFold(registry, cfg.Release.Registry) {
		auth = registryAuth(getenv)
	}
	if err := ociimage.Pull(ctx, ref, archive, name, auth); err != nil {
		return "", err
	}
	version, err := ociimage.KernelVersion(ociimage.LayoutDir(archive))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(w, "pulled %s, of kernel %s, verified, to %s (and as an OCI layout, %s)\n  podman load -i %s\n", ref, version, archive, ociimage.LayoutDir(archive), archive)
	return archive, nil
}
