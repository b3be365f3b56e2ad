package release

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// Published is a published release whose SHA256SUMS and manifest.json agree. Its assets are
// downloaded through the content-addressed cache, which keeps a file only once its bytes match the
// digest SHA256SUMS lists.
type Published struct {
	Manifest *manifest.Manifest
	sums     artifact.Sums
	urls     map[string]string // asset name -> download URL (the API's)
	cache    *fetch.Cache
	log      io.Writer
}

// OpenPublished finds the release (tag "" = the latest) of GITHUB_REPOSITORY, downloads its
// SHA256SUMS and manifest.json into the download cache in downloads, and checks them against each
// other. A token (GITHUB_TOKEN) is only needed for a private repository.
func OpenPublished(ctx context.Context, getenv func(string) string, tag, downloads string, log io.Writer) (*Published, error) {
	gh, err := FromEnv(getenv, "", log)
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
	p := &Published{urls: urls, cache: &fetch.Cache{Dir: downloads, Log: log, Header: header}, log: log}
	if err := p.readManifest(ctx, tagName); err != nil {
		return nil, err
	}
	return p, nil
}

// readManifest downloads SHA256SUMS and manifest.json, checks the manifest's digest against
// SHA256SUMS and the manifest's asset list against SHA256SUMS's.
func (p *Published) readManifest(ctx context.Context, tag string) error {
	small := func(name string) ([]byte, error) {
		u, ok := p.urls[name]
		if !ok {
			return nil, fmt.Errorf("release %s has no %s", tag, name)
		}
		return p.cache.Bytes(ctx, u, 16<<20)
	}
	sumsData, err := small(artifact.SumsName)
	if err != nil {
		return err
	}
	if p.sums, err = artifact.ParseSums(sumsData); err != nil {
		return err
	}
	manData, err := small(manifest.ManifestName)
	if err != nil {
		return err
	}
	if got := digest.Bytes(manData); got != p.sums[manifest.ManifestName] {
		return fmt.Errorf("release %s: %s has sha256 %s, %s lists %s", tag, manifest.ManifestName, got, artifact.SumsName, p.sums[manifest.ManifestName])
	}
	p.Manifest = &manifest.Manifest{}
	if err := json.Unmarshal(manData, p.Manifest); err != nil {
		return fmt.Errorf("%s: %w", manifest.ManifestName, err)
	}
	if d := p.Manifest.Disagreements(p.sums); len(d) > 0 {
		return fmt.Errorf("release %s: the manifest and %s disagree:\n  %s", p.Manifest.Tag, artifact.SumsName, strings.Join(d, "\n  "))
	}
	return nil
}

// Download returns the path in the cache of the asset called name, downloading it first if needed.
func (p *Published) Download(ctx context.Context, name string) (string, error) {
	if p.urls[name] == "" || p.Manifest.Assets[name] == "" {
		return "", fmt.Errorf("release %s has no %s", p.Manifest.Tag, name)
	}
	fmt.Fprintf(p.log, "fetch %s\n", name)
	return p.cache.File(ctx, p.urls[name], p.Manifest.Assets[name])
}

// Bootable is what booting a published release needs: its kernel tarball and one root filesystem's
// image, downloaded and checked against SHA256SUMS, and the records that describe them.
type Bootable struct {
	Manifest      *manifest.Manifest
	Rootfs        *manifest.RootfsRecord // the root filesystem of the image
	KernelTarball string                 // in the download cache
	Image         string                 // the compressed image (.ext4.zst), in the download cache
}

// DownloadBootable downloads the kernel tarball and recipe's image. format is the newest release
// format the caller can install: a release of a newer layout may hold what it does not know where to
// put, and is refused before anything is downloaded.
func (p *Published) DownloadBootable(ctx context.Context, recipe string, format int) (*Bootable, error) {
	m := p.Manifest
	b := &Bootable{Manifest: m}
	var have []string
	for i := range m.Rootfs {
		if m.Rootfs[i].Recipe == recipe {
			b.Rootfs = &m.Rootfs[i]
		}
		have = append(have, m.Rootfs[i].Recipe)
	}
	if b.Rootfs == nil {
		return nil, fmt.Errorf("release %s has no root filesystem %q; it has: %s (set SUML_BOOT_RECIPE to one of them)", m.Tag, recipe, strings.Join(have, ", "))
	}
	if m.Format > format {
		return nil, fmt.Errorf("release %s is of release format %d, newer than this simple-uml's %d: update simple-uml (git pull) to fetch it", m.Tag, m.Format, format)
	}
	version := strings.TrimPrefix(m.Tag, "v")
	var err error
	if b.KernelTarball, err = p.Download(ctx, manifest.KernelAsset(version, m.Kernel.Subarch)); err != nil {
		return nil, err
	}
	if b.Image, err = p.Download(ctx, manifest.RootfsAssetBase(recipe, b.Rootfs.Arch, version)+".ext4.zst"); err != nil {
		return nil, err
	}
	return b, nil
}

// Verify downloads every asset (through the cache) and checks each against SHA256SUMS, which the
// manifest agrees with; an asset SHA256SUMS does not list, or one it lists that is not attached, is
// an error.
func (p *Published) Verify(ctx context.Context) error {
	tag := p.Manifest.Tag
	for name := range p.urls {
		if _, listed := p.sums[name]; !listed && name != artifact.SumsName {
			return fmt.Errorf("release %s: asset %s is not listed in %s: it was not made by this release's `mage dist`; delete it from the release (or republish with `go tool mage release`, which removes it)",
				tag, name, artifact.SumsName)
		}
	}
	for name, sum := range p.sums {
		if name == manifest.ManifestName {
			continue
		}
		u, ok := p.urls[name]
		if !ok {
			return fmt.Errorf("release %s: %s is listed in %s but not attached", tag, name, artifact.SumsName)
		}
		if _, err := p.cache.File(ctx, u, sum); err != nil {
			return fmt.Errorf("release %s: %w", tag, err)
		}
	}
	return nil
}
