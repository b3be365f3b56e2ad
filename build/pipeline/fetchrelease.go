package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/release"
)

// FetchRelease downloads a published release (tag "" = the latest) of GITHUB_REPOSITORY: its
// SHA256SUMS and manifest, the kernel tarball and the image of boot.recipe; checks them against each
// other; and installs them into dist/ as `mage kernel` and `mage rootfs` would, so `mage boot` boots
// them. Downloads go through the content-addressed cache (resumable); a token is only needed for
// private repositories. Nothing is installed unless everything verifies.
func FetchRelease(ctx context.Context, cfg config.Config, getenv func(string) string, tag string, w io.Writer) (*manifest.Manifest, error) {
	ctx, run, err := startRun(ctx, cfg, "mage fetch", w)
	if err != nil {
		return nil, err
	}
	defer run.end()
	rr, err := openRelease(ctx, cfg, getenv, tag, w)
	if err != nil {
		return nil, err
	}
	m, urls, cache := rr.manifest, rr.urls, rr.cache
	var root *manifest.RootfsRecord
	for i := range m.Rootfs {
		if m.Rootfs[i].Recipe == cfg.Boot.Recipe {
			root = &m.Rootfs[i]
		}
	}
	if root == nil {
		var have []string
		for _, r := range m.Rootfs {
			have = append(have, r.Recipe)
		}
		return nil, fmt.Errorf("release %s has no root filesystem %q; it has: %s (set SUML_BOOT_RECIPE to one of them)", m.Tag, cfg.Boot.Recipe, strings.Join(have, ", "))
	}
	// A release of a newer layout may hold what this checkout does not know where to put.
	if m.Format > releaseFormat {
		return nil, fmt.Errorf("release %s is of release format %d, newer than this simple-uml's %d: update simple-uml (git pull) to fetch it", m.Tag, m.Format, releaseFormat)
	}
	version := strings.TrimPrefix(m.Tag, "v")
	kernelTar := manifest.KernelAsset(version, m.Kernel.Subarch)
	imageZst := manifest.RootfsAssetBase(root.Recipe, root.Arch, version) + ".ext4.zst"
	paths := map[string]string{}
	for _, name := range []string{kernelTar, imageZst} {
		if urls[name] == "" || m.Assets[name] == "" {
			return nil, fmt.Errorf("release %s has no %s", m.Tag, name)
		}
		fmt.Fprintf(w, "fetch %s\n", name)
		// The cache checks the download against SHA256SUMS's digest before keeping it.
		if paths[name], err = cache.File(ctx, urls[name], m.Assets[name]); err != nil {
			return nil, err
		}
	}
	if err := kernel.InstallFetched(ctx, cfg.Paths.Dist, m, root, paths[kernelTar], paths[imageZst]); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "release %s installed into %s: `go tool mage boot` boots it\n", m.Tag, cfg.Paths.Dist)
	return m, nil
}

// remoteRelease is a published release whose SHA256SUMS and manifest agree.
type remoteRelease struct {
	manifest *manifest.Manifest
	sums     artifact.Sums
	urls     map[string]string // asset name -> download URL
	cache    *fetch.Cache
}

// openRelease finds the release (tag "" = the latest) of GITHUB_REPOSITORY, downloads its SHA256SUMS
// and manifest.json and checks them against each other.
func openRelease(ctx context.Context, cfg config.Config, getenv func(string) string, tag string, w io.Writer) (*remoteRelease, error) {
	gh, err := release.FromEnv(getenv, "", w)
	if err != nil {
		return nil, err
	}
	tagName, urls, err := gh.ReleaseAssets(ctx, tag)
	if err != nil {
		return nil, err
	}
	// Assets come through the API (the token, when set, reaches a private repository's assets), which
	// redirects to GitHub's storage host; the cache follows that redirect without the token.
	header := http.Header{"Accept": {"application/octet-stream"}}
	if token := getenv("GITHUB_TOKEN"); token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	rr := &remoteRelease{urls: urls, cache: &fetch.Cache{Dir: cfg.Paths.Downloads, Log: w, Header: header}}
	small := func(name string) ([]byte, error) {
		u, ok := rr.urls[name]
		if !ok {
			return nil, fmt.Errorf("release %s has no %s", tagName, name)
		}
		return rr.cache.Bytes(ctx, u, 16<<20)
	}
	sumsData, err := small(artifact.SumsName)
	if err != nil {
		return nil, err
	}
	if rr.sums, err = artifact.ParseSums(sumsData); err != nil {
		return nil, err
	}
	manData, err := small(manifest.ManifestName)
	if err != nil {
		return nil, err
	}
	if got := digest.Bytes(manData); got != rr.sums[manifest.ManifestName] {
		return nil, fmt.Errorf("release %s: %s has sha256 %s, %s lists %s", tagName, manifest.ManifestName, got, artifact.SumsName, rr.sums[manifest.ManifestName])
	}
	rr.manifest = &manifest.Manifest{}
	if err := json.Unmarshal(manData, rr.manifest); err != nil {
		return nil, fmt.Errorf("%s: %w", manifest.ManifestName, err)
	}
	if d := rr.manifest.Disagreements(rr.sums); len(d) > 0 {
		return nil, fmt.Errorf("release %s: the manifest and %s disagree:\n  %s", rr.manifest.Tag, artifact.SumsName, strings.Join(d, "\n  "))
	}
	return rr, nil
}

// VerifyRelease downloads every asset of a published release (through the cache) and checks each
// against SHA256SUMS and the manifest.
func VerifyRelease(ctx context.Context, cfg config.Config, getenv func(string) string, tag string, w io.Writer) (*manifest.Manifest, error) {
	rr, err := openRelease(ctx, cfg, getenv, tag, w)
	if err != nil {
		return nil, err
	}
	// The release holds exactly what SHA256SUMS lists, and SHA256SUMS.
	for name := range rr.urls {
		if _, listed := rr.sums[name]; !listed && name != artifact.SumsName {
			return nil, fmt.Errorf("release %s: asset %s is not listed in %s: it was not made by this release's `mage dist`; delete it from the release (or republish with `go tool mage release`, which removes it)",
				rr.manifest.Tag, name, artifact.SumsName)
		}
	}
	for name, sum := range rr.sums {
		if name == manifest.ManifestName {
			continue
		}
		u, ok := rr.urls[name]
		if !ok {
			return nil, fmt.Errorf("release %s: %s is listed in %s but not attached", rr.manifest.Tag, name, artifact.SumsName)
		}
		if _, err := rr.cache.File(ctx, u, sum); err != nil {
			return nil, fmt.Errorf("release %s: %w", rr.manifest.Tag, err)
		}
	}
	return rr.manifest, nil
}
