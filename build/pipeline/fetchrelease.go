package pipeline

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/release"
	"github.com/simple-uml/simple-uml/build/releasedir"
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
	start := time.Now()
	var (
		published *release.Published
		pair      *release.Bootable
	)
	timer := newStepTimer()
	if err := runSteps(ctx, timer,
		step{name: "release", run: func(ctx context.Context) (err error) {
			published, err = release.OpenPublished(ctx, getenv, tag, cfg.Paths.Downloads, w)
			return err
		}},
		step{name: "download", run: func(ctx context.Context) (err error) {
			pair, err = published.DownloadBootable(ctx, cfg.Boot.Recipe, releasedir.Format)
			return err
		}},
		step{name: "install", run: func(ctx context.Context) error {
			return kernel.InstallFetched(ctx, cfg.Paths.Dist, pair.Manifest, pair.Rootfs, pair.KernelTarball, pair.Image)
		}},
	); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "release %s installed into %s in %s (%s): `go tool mage boot` boots it\n",
		pair.Manifest.Tag, cfg.Paths.Dist, time.Since(start).Round(time.Millisecond), timer)
	return pair.Manifest, nil
}

// VerifyRelease downloads every asset of a published release (through the cache) and checks each
// against SHA256SUMS and the manifest.
func VerifyRelease(ctx context.Context, cfg config.Config, getenv func(string) string, tag string, w io.Writer) (*manifest.Manifest, error) {
	published, err := release.OpenPublished(ctx, getenv, tag, cfg.Paths.Downloads, w)
	if err != nil {
		return nil, err
	}
	if err := published.Verify(ctx); err != nil {
		return nil, err
	}
	return published.Manifest, nil
}
