package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/release"
	"github.com/simple-uml/simple-uml/build/releasedir"
	"github.com/simple-uml/simple-uml/build/run"
)

// PublishOptions are the switches of `mage release`.
type PublishOptions struct {
	DryRun  bool // print the plan, write nothing
	Replace bool // replace assets that differ, also on a published release
}

// Publish verifies dist/release and publishes it as the GitHub release of its tag, in the repository
// GITHUB_REPOSITORY ("owner/name") with GITHUB_TOKEN, at GITHUB_API_URL (GitHub Enterprise) when set:
// the variables a GitHub Actions job has. The token is never printed.
func Publish(ctx context.Context, cfg config.Config, getenv func(string) string, opts PublishOptions, w io.Writer) (*release.Plan, error) {
	dir := filepath.Join(cfg.Paths.Dist, releasedir.Name)
	m, err := manifest.Verify(dir)
	if err != nil {
		return nil, fmt.Errorf("%w\n(run `go tool mage dist` first)", err)
	}
	// A tag push publishes the release the tag names, or nothing.
	if getenv("GITHUB_REF_TYPE") == "tag" && getenv("GITHUB_REF_NAME") != m.Tag {
		return nil, fmt.Errorf("the pushed tag %s is not dist's release %s (kernel.lock's version and release.revision): tag the commit v<version>-<revision>, or set SUML_RELEASE_REVISION", getenv("GITHUB_REF_NAME"), m.Tag)
	}
	var need string
	if !opts.DryRun {
		need = "contents:write on the repository, to publish"
	}
	p, err := release.FromEnv(getenv, need, w)
	if err != nil {
		return nil, err
	}
	assets, err := release.DirAssets(dir)
	if err != nil {
		return nil, err
	}
	notes, err := os.ReadFile(filepath.Join(dir, manifest.NotesName))
	if err != nil {
		return nil, err
	}
	p.DryRun, p.Replace = opts.DryRun, opts.Replace
	if p.Commit, err = builtCommit(ctx, cfg, getenv); err != nil {
		return nil, err
	}
	if p.Latest, err = latestRelease(ctx, cfg, p, m.Tag); err != nil {
		return nil, p.Explain(err)
	}
	fmt.Fprintf(w, "release %s: tag at commit %s; latest: %v\n", m.Tag, p.Commit, p.Latest)
	plan, err := p.Publish(ctx, m.Tag, "simple-uml "+m.Tag, string(notes), assets)
	err = p.Explain(err)
	if errors.Is(err, release.ErrReplaceRefused) {
		err = fmt.Errorf("%w\n  run `go tool mage release -replace` to replace them", err)
	}
	return plan, err
}

// builtCommit is the commit the release was built from, for its tag: GitHub Actions' GITHUB_SHA,
// or the repository's HEAD.
func builtCommit(ctx context.Context, cfg config.Config, getenv func(string) string) (string, error) {
	sha := getenv("GITHUB_SHA")
	if sha == "" {
		var err error
		if sha, err = run.Output(ctx, run.Cmd{Args: []string{"git", "rev-parse", "HEAD"}, Dir: cfg.Root}); err != nil {
			return "", fmt.Errorf("the commit to tag: not a git checkout, and GITHUB_SHA is not set: %w", err)
		}
	}
	if len(sha) != 40 || strings.Trim(sha, "0123456789abcdef") != "" {
		return "", fmt.Errorf("the commit to tag %q is not a full commit id (GITHUB_SHA)", sha)
	}
	return sha, nil
}

// latestRelease says whether tag becomes the repository's "latest" release, which `mage fetch`
// installs by default: only when it is of the default kernel series (kernel.series, not another
// series kernel.lock keeps) and newer than every published release of that series.
func latestRelease(ctx context.Context, cfg config.Config, p *release.GitHub, tag string) (bool, error) {
	series := cfg.DefaultSeries
	if series == "" {
		series = cfg.Kernel.Series
	}
	if series != "stable" && series != "mainline" && !strings.HasPrefix(tag, "v"+series+".") && !strings.HasPrefix(tag, "v"+series+"-") {
		return false, nil
	}
	return p.NewestOfSeries(ctx, tag)
}
