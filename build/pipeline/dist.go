package pipeline

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/releasedir"
)

// DistResult says what Dist wrote.
type DistResult struct {
	Dir      string
	Tag      string
	Assets   []string
	UpToDate bool // dist/release already held this release: nothing was written
}

// Dist turns dist/'s kernel and root filesystems into release assets in dist/release/: the kernel
// tarball, each recipe's compressed image and tarball, manifest.json and SHA256SUMS. The folder is
// replaced as a whole, so it is either the old release or the new one.
func Dist(ctx context.Context, cfg config.Config, w io.Writer) (DistResult, error) {
	start := time.Now()
	ctx, run, err := startRun(ctx, cfg, "mage dist", w)
	if err != nil {
		return DistResult{}, err
	}
	defer run.end()
	b, err := releasedir.Plan(cfg)
	if err != nil {
		return DistResult{}, err
	}
	res := DistResult{Dir: b.Dir, Tag: b.Manifest.Tag}
	if res.Assets, res.UpToDate = b.Current(); res.UpToDate {
		fmt.Fprintf(w, "release %s is up to date in %s (same kernel, root filesystems, revision and layout); nothing to do (%s)\n",
			res.Tag, res.Dir, time.Since(start).Round(time.Millisecond))
		return res, nil
	}
	if err := b.Open(); err != nil {
		return DistResult{}, err
	}
	defer b.Close()
	fmt.Fprintf(w, "dist: release %s (SOURCE_DATE_EPOCH=%d)\n", res.Tag, b.Epoch.Unix())
	timer := newStepTimer()
	if err := runSteps(ctx, timer, distSteps(b)...); err != nil {
		return DistResult{}, err
	}
	if res.Assets, err = b.Replace(); err != nil {
		return DistResult{}, err
	}
	releasedir.List(w, res.Dir, res.Assets)
	run.log("dist", res.Tag, start, timer.String())
	return res, nil
}

// distSteps are the release's parts as steps, then its manifest and sums.
func distSteps(b *releasedir.Build) []step {
	var steps []step
	for _, s := range b.Steps() {
		steps = append(steps, step{name: s.Name, run: s.Run})
	}
	return steps
}
