package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/simple-uml/simple-uml/build/config"
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
	var auth authn.Authenticator = authn.Anonymous
	if token := getenv("GITHUB_TOKEN"); token != "" {
		auth = &authn.Basic{Username: cmp.Or(getenv("GITHUB_ACTOR"), "simple-uml"), Password: token}
	}
	digest, err := ociimage.Push(ctx, layout, repository+":"+m.Tag, auth)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(w, "pushed %s:%s, %s@%s\n", repository, m.Tag, repository, digest)
	return repository + "@" + digest.String(), nil
}
