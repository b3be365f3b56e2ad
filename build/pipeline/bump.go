package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/kernelorg"
)

// BumpOptions are the switches of `mage bump`.
type BumpOptions struct {
	Version  string // pin this exact version instead of the newest of the series
	DryRun   bool   // say what would change, change nothing
	AllowEOL bool   // accept a series kernel.org marks end of life
	LockPath string // the lock file to rewrite; empty: kernel.lock at the repository root
}

// BumpResult says what Bump found.
type BumpResult struct {
	Old, New config.KernelPin
	Changed  bool
}

// Bump pins the newest release of the tracked series (or opts.Version): it reads releases.json,
// verifies the release directory's signed sha256sums.asc and rewrites version, sha256 and released in
// the lock file in place, leaving every other line as it was. It refuses an end-of-life series, a
// version whose checksum is not yet signed, and a downgrade.
func Bump(ctx context.Context, cfg config.Config, opts BumpOptions, w io.Writer) (BumpResult, error) {
	lockPath := opts.LockPath
	if lockPath == "" {
		lockPath = filepath.Join(cfg.Root, config.LockName)
	}
	res := BumpResult{Old: cfg.Pin}
	cache := &fetch.Cache{Dir: cfg.Paths.Downloads, Log: w}
	rel, err := bumpTarget(ctx, cfg, cache, opts)
	if err != nil {
		return res, err
	}
	if cmp := kernelorg.CompareVersions(rel.Version, cfg.Pin.Version); cmp == 0 && cfg.Pin.SHA256 != "" {
		fmt.Fprintf(w, "kernel %s is up to date (series %s)\n", cfg.Pin.Version, cfg.Kernel.Series)
		res.New = cfg.Pin
		return res, nil
	} else if cmp < 0 && kernelorg.Series(rel.Version) == kernelorg.Series(cfg.Pin.Version) {
		return res, fmt.Errorf("%s is older than the pinned %s: refusing to downgrade (edit kernel.lock by hand if you mean it)", rel.Version, cfg.Pin.Version)
	} else if cmp < 0 {
		// Another branch, chosen in kernel.series or by an exact pin (a release job building 6.6 too).
		fmt.Fprintf(w, "switching from the %s branch to %s\n", kernelorg.Series(cfg.Pin.Version), kernelorg.Series(rel.Version))
	}
	sum, err := kernel.SignedSHA256(ctx, cfg, cache, rel.Version)
	if errors.Is(err, kernelorg.ErrNotListed) {
		return res, fmt.Errorf("linux %s is listed but its checksum is not yet in the signed sha256sums.asc: try again later (%w)", rel.Version, err)
	}
	if err != nil {
		return res, err
	}
	res.New = config.KernelPin{Version: rel.Version, SHA256: sum}
	if !rel.Released.IsZero() {
		res.New.Released = rel.Released.UTC().Format("2006-01-02")
	}
	res.Changed = res.New != res.Old
	if !res.Changed {
		fmt.Fprintf(w, "kernel %s is up to date (series %s)\n", cfg.Pin.Version, cfg.Kernel.Series)
		return res, nil
	}
	fmt.Fprintf(w, "linux %s -> %s (sha256 %s, verified against kernel.org's signed sha256sums.asc)\n", orNone(res.Old.Version), res.New.Version, sum)
	fmt.Fprintf(w, "  changelog: %s/%s/ChangeLog-%s\n", strings.TrimRight(cfg.Kernel.Mirror, "/"), kernelorg.Dir(rel.Version), rel.Version)
	if opts.DryRun {
		fmt.Fprintf(w, "dry run: %s not changed\n", lockPath)
		return res, nil
	}
	if err := config.WriteLock(lockPath, cfg.LockSection(), res.New); err != nil {
		return res, err
	}
	fmt.Fprintf(w, "%s rewritten\n", lockPath)
	return res, nil
}

// bumpTarget is the release to pin: -to's exact version, or the newest of kernel.series that
// kernel.org's releases.json lists (not an end-of-life one unless allowed).
func bumpTarget(ctx context.Context, cfg config.Config, cache *fetch.Cache, opts BumpOptions) (kernelorg.Release, error) {
	data, err := cache.Bytes(ctx, cfg.Kernel.ReleasesURL, 16<<20)
	if err != nil {
		return kernelorg.Release{}, fmt.Errorf("releases.json: %w", err)
	}
	releases, err := kernelorg.ParseReleases(data)
	if err != nil {
		return kernelorg.Release{}, err
	}
	if opts.Version != "" && cfg.LockSection() != "" && !kernelorg.InSeries(opts.Version, cfg.Kernel.Series) {
		return kernelorg.Release{}, fmt.Errorf("bump -to=%s -series=%s: %s is not a release of %s", opts.Version, cfg.Kernel.Series, opts.Version, cfg.Kernel.Series)
	}
	rel, err := kernelorg.Pick(releases, cfg.Kernel.Series, opts.Version, opts.AllowEOL)
	if err != nil && opts.Version != "" {
		return rel, fmt.Errorf("bump %q: %w", opts.Version, err)
	}
	return rel, err
}

// orNone is s, or "(none)" when it is empty: a pin that was not set yet.
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
