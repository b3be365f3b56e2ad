package release

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/simple-uml/simple-uml/build/ident"
)

// GitHub's rules for account and repository names.
var (
	githubOwner = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	githubRepo  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
)

// FromEnv is the repository GITHUB_REPOSITORY ("owner/name") names, reached with GITHUB_TOKEN at
// GITHUB_API_URL (GitHub Enterprise) when set: the variables a GitHub Actions job has. need says
// what the token must allow; "" when none is needed. The token is never printed.
func FromEnv(getenv func(string) string, need string, log io.Writer) (*GitHub, error) {
	owner, repo, ok := strings.Cut(getenv("GITHUB_REPOSITORY"), "/")
	if !ok || !githubOwner.MatchString(owner) || !githubRepo.MatchString(repo) || strings.HasSuffix(repo, ".git") || repo == "." || repo == ".." {
		return nil, fmt.Errorf("GITHUB_REPOSITORY=%q must name the repository as owner/name, e.g. simple-uml/simple-uml (GitHub Actions sets it)", getenv("GITHUB_REPOSITORY"))
	}
	token := getenv("GITHUB_TOKEN")
	if token == "" && need != "" {
		return nil, fmt.Errorf("GITHUB_TOKEN is not set: a token with %s is needed", need)
	}
	client, err := NewClient(getenv("GITHUB_API_URL"), token, nil)
	if err != nil {
		return nil, fmt.Errorf("GITHUB_API_URL: %w", err)
	}
	return &GitHub{Client: client, Owner: owner, Repo: repo, Log: log, Anonymous: token == ""}, nil
}

// Explain adds to an API error the setting that fixes it: the token for 401, the repository name or
// the token's access for 404, the token's permissions for 403.
func (p *GitHub) Explain(err error) error {
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil {
		return err
	}
	switch er.Response.StatusCode {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w\n  GitHub refused GITHUB_TOKEN: it has expired or been revoked; make a new one (contents:write on %s/%s to publish)", err, p.Owner, p.Repo)
	case http.StatusNotFound:
		return fmt.Errorf("%w\n  GitHub knows no repository %s/%s that this token may see: check GITHUB_REPOSITORY, and for a private repository set GITHUB_TOKEN to a token with access to it", err, p.Owner, p.Repo)
	case http.StatusForbidden:
		return fmt.Errorf("%w\n  GITHUB_TOKEN lacks a permission: publishing needs contents:write on %s/%s", err, p.Owner, p.Repo)
	}
	return err
}

// ReleaseAssets finds the release of tag ("" for the latest) and returns its tag and its assets'
// download URLs by name. The API's JSON names files and URLs: both are checked before either is
// returned.
func (p *GitHub) ReleaseAssets(ctx context.Context, tag string) (string, map[string]string, error) {
	var rel *github.RepositoryRelease
	var err error
	if tag == "" {
		rel, _, err = p.Client.Repositories.GetLatestRelease(ctx, p.Owner, p.Repo)
	} else {
		rel, _, err = p.Client.Repositories.GetReleaseByTag(ctx, p.Owner, p.Repo, tag)
	}
	if err != nil {
		return "", nil, p.Explain(fmt.Errorf("release %q of %s/%s: %w", tag, p.Owner, p.Repo, err))
	}
	urls := map[string]string{}
	for _, a := range rel.Assets {
		if err := ident.Name("asset name", a.GetName()); err != nil {
			return "", nil, fmt.Errorf("release %s: %w", rel.GetTagName(), err)
		}
		if err := CheckDownloadURL(p.Client, a.GetName(), a.GetURL()); err != nil {
			return "", nil, fmt.Errorf("release %s: %w", rel.GetTagName(), err)
		}
		urls[a.GetName()] = a.GetURL()
	}
	return rel.GetTagName(), urls, nil
}
