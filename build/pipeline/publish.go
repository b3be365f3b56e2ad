package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/release"
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
	dir := filepath.Join(cfg.Paths.Dist, ReleaseDir)
	m, err := Verify(dir)
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
	client, owner, repo, err := githubRepository(getenv, need)
	if err != nil {
		return nil, err
	}
	assets, err := release.DirAssets(dir)
	if err != nil {
		return nil, err
	}
	notes, err := os.ReadFile(filepath.Join(dir, NotesName))
	if err != nil {
		return nil, err
	}
	p := &release.Publisher{Client: client, Owner: owner, Repo: repo, Log: w, DryRun: opts.DryRun, Replace: opts.Replace}
	return p.Publish(ctx, m.Tag, "simple-uml "+m.Tag, string(notes), assets)
}

// githubRepository makes a client for GITHUB_REPOSITORY ("owner/name") with GITHUB_TOKEN at
// GITHUB_API_URL (GitHub Enterprise) when set: the variables a GitHub Actions job has. need says what
// the token must allow; "" when none is needed.
func githubRepository(getenv func(string) string, need string) (client *github.Client, owner, repo string, err error) {
	owner, repo, ok := strings.Cut(getenv("GITHUB_REPOSITORY"), "/")
	if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
		return nil, "", "", errors.New("GITHUB_REPOSITORY must name the repository as owner/name (GitHub Actions sets it)")
	}
	token := getenv("GITHUB_TOKEN")
	if token == "" && need != "" {
		return nil, "", "", fmt.Errorf("GITHUB_TOKEN is not set: a token with %s is needed", need)
	}
	client, err = release.NewClient(getenv("GITHUB_API_URL"), token, nil)
	if err != nil {
		return nil, "", "", fmt.Errorf("GITHUB_API_URL: %w", err)
	}
	return client, owner, repo, nil
}
