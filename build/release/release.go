// Package release publishes release assets as one GitHub release with go-github: find or create
// one draft for the tag, upload what is missing, publish last. A rerun after any failure converges to
// the same release, and a complete release is left untouched.
package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/simple-uml/simple-uml/build/fetch"
)

// Asset is a file to publish.
type Asset struct {
	Name string
	Path string
	Size int64
}

// Publisher publishes to one repository.
type Publisher struct {
	Client      *github.Client
	Owner, Repo string
	Log         io.Writer
	Replace     bool          // replace assets that differ, also on a published release
	DryRun      bool          // print the plan, write nothing
	Attempts    int           // per call; 0 means 5
	Backoff     time.Duration // first retry wait, doubled each time; 0 means 2s
	MaxWait     time.Duration // longest rate-limit wait accepted; 0 means one hour
	sleep       func(context.Context, time.Duration) error
}

// NewClient makes a go-github client for GitHub or GitHub Enterprise: apiURL is GITHUB_API_URL
// (https://api.github.com, or https://HOST/api/v3), the upload host is derived from it.
func NewClient(apiURL, token string, httpClient *http.Client) (*github.Client, error) {
	c := github.NewClient(httpClient)
	if token != "" {
		c = c.WithAuthToken(token)
	}
	if apiURL == "" || strings.TrimRight(apiURL, "/") == "https://api.github.com" {
		return c, nil
	}
	base := strings.TrimRight(apiURL, "/") + "/"
	upload := strings.Replace(base, "/api/v3/", "/api/uploads/", 1)
	return c.WithEnterpriseURLs(base, upload)
}

// CheckDownloadURL refuses an asset URL from the API's JSON that is not http(s) on the API's own host
// or, for github.com, on github.com: anything else (a local path, another host) would make the
// caller read a file or talk to a server that no setting named.
func CheckDownloadURL(c *github.Client, asset, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("asset %s: download URL %q is not an http(s) URL", asset, raw)
	}
	api := c.BaseURL.Host
	if u.Host == api || api == "api.github.com" && u.Host == "github.com" {
		return nil
	}
	return fmt.Errorf("asset %s: download URL %q is not on %s, the API's host", asset, raw, api)
}

// Action says what Publish does (or would do) with an asset.
type Action string

const (
	Upload  Action = "upload"
	Skip    Action = "skip (already uploaded, same size and digest)"
	Replace Action = "replace"
)

// Plan is what Publish found and did.
type Plan struct {
	Tag       string
	ReleaseID int64
	Existing  string // "none", "draft" or "published"
	Actions   map[string]Action
	APICalls
}

// APICalls counts the API calls an operation made.
type APICalls struct {
	Calls  int // all API calls made
	Writes int // mutating API calls made
}

// Publish makes tag's release hold exactly assets (SHA256SUMS among them) and publishes it.
func (p *Publisher) Publish(ctx context.Context, tag, title, body string, assets []Asset) (*Plan, error) {
	plan := &Plan{Tag: tag, Existing: "none", Actions: map[string]Action{}}
	sort.Slice(assets, func(i, j int) bool { return uploadOrder(assets[i].Name) < uploadOrder(assets[j].Name) })
	rel, err := p.findRelease(ctx, plan, tag)
	if err != nil {
		return plan, err
	}
	var remote map[string]*github.ReleaseAsset
	sumsMatch := false
	if rel != nil {
		plan.ReleaseID = rel.GetID()
		if remote, err = p.listAssets(ctx, plan, rel.GetID()); err != nil {
			return plan, err
		}
		if sumsMatch, err = p.sumsMatch(ctx, plan, remote, assets); err != nil {
			return plan, err
		}
	}
	for _, a := range assets {
		r, ok := remote[a.Name]
		switch {
		case !ok:
			plan.Actions[a.Name] = Upload
		case r.GetState() != "uploaded" || int64(r.GetSize()) != a.Size:
			plan.Actions[a.Name] = Replace
		case sumsMatch:
			plan.Actions[a.Name] = Skip
		default:
			// No matching SHA256SUMS on the release (a run stopped before its last upload): compare
			// this asset's digest by downloading it.
			same, err := p.sameDigest(ctx, plan, r, a)
			if err != nil {
				return plan, err
			}
			plan.Actions[a.Name] = Replace
			if same {
				plan.Actions[a.Name] = Skip
			}
		}
	}
	p.printPlan(plan, assets)
	changes := 0
	for _, a := range assets {
		if plan.Actions[a.Name] != Skip {
			changes++
		}
	}
	if plan.Existing == "published" && changes > 0 && !p.Replace {
		return plan, fmt.Errorf("release %s is published and %d of its assets differ from dist's: refusing to change a published release (ask for replacing to overwrite)", tag, changes)
	}
	if p.DryRun {
		return plan, nil
	}
	if rel == nil {
		r := &github.RepositoryRelease{TagName: github.String(tag), Name: github.String(title), Body: github.String(body), Draft: github.Bool(true)}
		err := p.call(ctx, &plan.APICalls, true, "create the draft release", func() (*github.Response, error) {
			var resp *github.Response
			var err error
			rel, resp, err = p.Client.Repositories.CreateRelease(ctx, p.Owner, p.Repo, r)
			return resp, err
		})
		if err != nil {
			return plan, err
		}
		plan.ReleaseID = rel.GetID()
	}
	for _, a := range assets {
		switch plan.Actions[a.Name] {
		case Skip:
			continue
		case Replace:
			r := remote[a.Name]
			if r.GetState() != "starter" && !p.Replace {
				return plan, fmt.Errorf("asset %s of release %s differs from dist's (size %d, state %s): refusing to replace it (ask for replacing)", a.Name, tag, r.GetSize(), r.GetState())
			}
			if err := p.call(ctx, &plan.APICalls, true, "delete the old "+a.Name, func() (*github.Response, error) {
				return p.Client.Repositories.DeleteReleaseAsset(ctx, p.Owner, p.Repo, r.GetID())
			}); err != nil {
				return plan, err
			}
		}
		if err := p.upload(ctx, plan, rel.GetID(), a); err != nil {
			return plan, err
		}
	}
	if rel.GetDraft() || rel.GetName() != title || rel.GetBody() != body {
		edit := &github.RepositoryRelease{Name: github.String(title), Body: github.String(body), Draft: github.Bool(false)}
		if err := p.call(ctx, &plan.APICalls, true, "publish the release", func() (*github.Response, error) {
			_, resp, err := p.Client.Repositories.EditRelease(ctx, p.Owner, p.Repo, rel.GetID(), edit)
			return resp, err
		}); err != nil {
			return plan, err
		}
	}
	fmt.Fprintf(p.log(), "release %s published: %d API calls, %d of them writes\n", tag, plan.Calls, plan.Writes)
	return plan, nil
}

// uploadOrder puts SHA256SUMS last: its presence on a release means every other asset was uploaded.
func uploadOrder(name string) string {
	if name == "SHA256SUMS" {
		return "\xff"
	}
	return name
}

// findRelease returns the published release of the tag, or its one draft (the oldest when there
// are several), or nil.
func (p *Publisher) findRelease(ctx context.Context, plan *Plan, tag string) (*github.RepositoryRelease, error) {
	var rel *github.RepositoryRelease
	err := p.call(ctx, &plan.APICalls, false, "look up release "+tag, func() (*github.Response, error) {
		var resp *github.Response
		var err error
		rel, resp, err = p.Client.Repositories.GetReleaseByTag(ctx, p.Owner, p.Repo, tag)
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			rel = nil
			return resp, nil
		}
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	if rel != nil && !rel.GetDraft() {
		plan.Existing = "published"
		return rel, nil
	}
	// A draft is invisible to the tag lookup: list the releases.
	var drafts []*github.RepositoryRelease
	opts := &github.ListOptions{PerPage: 100}
	for {
		var page []*github.RepositoryRelease
		var resp *github.Response
		err := p.call(ctx, &plan.APICalls, false, "list releases", func() (*github.Response, error) {
			var err error
			page, resp, err = p.Client.Repositories.ListReleases(ctx, p.Owner, p.Repo, opts)
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, r := range page {
			if r.GetDraft() && r.GetTagName() == tag {
				drafts = append(drafts, r)
			}
		}
		if resp == nil || resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if len(drafts) == 0 {
		return nil, nil
	}
	sort.Slice(drafts, func(i, j int) bool { return drafts[i].GetID() < drafts[j].GetID() })
	if len(drafts) > 1 {
		fmt.Fprintf(p.log(), "note: %d draft releases for %s; using the oldest (id %d)\n", len(drafts), tag, drafts[0].GetID())
	}
	plan.Existing = "draft"
	return drafts[0], nil
}

func (p *Publisher) listAssets(ctx context.Context, plan *Plan, id int64) (map[string]*github.ReleaseAsset, error) {
	out := map[string]*github.ReleaseAsset{}
	opts := &github.ListOptions{PerPage: 100}
	for {
		var page []*github.ReleaseAsset
		var resp *github.Response
		err := p.call(ctx, &plan.APICalls, false, "list release assets", func() (*github.Response, error) {
			var err error
			page, resp, err = p.Client.Repositories.ListReleaseAssets(ctx, p.Owner, p.Repo, id, opts)
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		for _, a := range page {
			out[a.GetName()] = a
		}
		if resp == nil || resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// sumsMatch reports whether the release's uploaded SHA256SUMS is the one being published: then an
// uploaded asset of the same name and size has the same digest.
func (p *Publisher) sumsMatch(ctx context.Context, plan *Plan, remote map[string]*github.ReleaseAsset, assets []Asset) (bool, error) {
	r, ok := remote["SHA256SUMS"]
	if !ok || r.GetState() != "uploaded" {
		return false, nil
	}
	var local []byte
	for _, a := range assets {
		if a.Name == "SHA256SUMS" {
			var err error
			if local, err = os.ReadFile(a.Path); err != nil {
				return false, err
			}
		}
	}
	if local == nil || int64(r.GetSize()) != int64(len(local)) {
		return false, nil
	}
	var got []byte
	err := p.call(ctx, &plan.APICalls, false, "download SHA256SUMS", func() (*github.Response, error) {
		rc, _, err := p.Client.Repositories.DownloadReleaseAsset(ctx, p.Owner, p.Repo, r.GetID(), p.Client.Client())
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		got, err = io.ReadAll(io.LimitReader(rc, 1<<20))
		return nil, err
	})
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, local), nil
}

// sameDigest downloads an uploaded asset and compares its sha256 with the local file's.
func (p *Publisher) sameDigest(ctx context.Context, plan *Plan, r *github.ReleaseAsset, a Asset) (bool, error) {
	local, err := fetch.FileSHA256(a.Path)
	if err != nil {
		return false, err
	}
	var remote string
	err = p.call(ctx, &plan.APICalls, false, "download "+a.Name+" to compare", func() (*github.Response, error) {
		rc, _, err := p.Client.Repositories.DownloadReleaseAsset(ctx, p.Owner, p.Repo, r.GetID(), p.Client.Client())
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			return nil, err
		}
		remote = hex.EncodeToString(h.Sum(nil))
		return nil, nil
	})
	return remote == local, err
}

func (p *Publisher) upload(ctx context.Context, plan *Plan, id int64, a Asset) error {
	return p.call(ctx, &plan.APICalls, true, "upload "+a.Name, func() (*github.Response, error) {
		// An *os.File body cannot be replayed: a new one for every attempt.
		f, err := os.Open(a.Path)
		if err != nil {
			return nil, permanent{err}
		}
		defer f.Close()
		_, resp, err := p.Client.Repositories.UploadReleaseAsset(ctx, p.Owner, p.Repo, id,
			&github.UploadOptions{Name: a.Name, MediaType: mediaType(a.Name)}, f)
		return resp, err
	})
}

func mediaType(name string) string {
	switch {
	case strings.HasSuffix(name, ".json"):
		return "application/json"
	case strings.HasSuffix(name, ".md"), name == "SHA256SUMS":
		return "text/plain; charset=utf-8"
	case strings.HasSuffix(name, ".xz"):
		return "application/x-xz"
	case strings.HasSuffix(name, ".zst"):
		return "application/zstd"
	}
	return "application/octet-stream"
}

type permanent struct{ error }

func (e permanent) Unwrap() error { return e.error }

// call runs one API call with retries: network errors, 5xx and 429 are retried with backoff; a rate
// limit is waited out (with a message); anything else fails at once.
func (p *Publisher) call(ctx context.Context, n *APICalls, write bool, what string, f func() (*github.Response, error)) error {
	attempts := p.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	wait := p.Backoff
	if wait <= 0 {
		wait = 2 * time.Second
	}
	maxWait := p.MaxWait
	if maxWait <= 0 {
		maxWait = time.Hour
	}
	for i := 1; ; i++ {
		n.Calls++
		if write {
			n.Writes++
		}
		resp, err := f()
		if err == nil {
			return nil
		}
		var perm permanent
		if errors.As(err, &perm) || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		var rl *github.RateLimitError
		var abuse *github.AbuseRateLimitError
		delay, retry := wait, false
		switch {
		case errors.As(err, &rl):
			delay, retry = time.Until(rl.Rate.Reset.Time)+time.Second, true
			fmt.Fprintf(p.log(), "GitHub rate limit reached; waiting %s until it resets\n", delay.Round(time.Second))
		case errors.As(err, &abuse):
			delay, retry = abuse.GetRetryAfter(), true
			if delay <= 0 {
				delay = time.Minute
			}
			fmt.Fprintf(p.log(), "GitHub secondary rate limit; waiting %s\n", delay.Round(time.Second))
		case resp != nil && (resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests):
			retry = true
		case resp == nil && isNetwork(err):
			retry = true
		}
		if !retry || i >= attempts || delay > maxWait {
			return fmt.Errorf("%s: %w", what, redact(err))
		}
		fmt.Fprintf(p.log(), "%s failed (%v); retrying in %s (%d/%d)\n", what, redact(err), delay.Round(time.Millisecond), i, attempts-1)
		if err := p.wait(ctx, delay); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		wait *= 2
	}
}

func (p *Publisher) wait(ctx context.Context, d time.Duration) error {
	if p.sleep != nil {
		return p.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isNetwork(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// redact keeps credentials out of messages: go-github errors quote the request URL, which never holds
// the token (it travels in a header), but an enterprise URL could carry user:password.
func redact(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "://"); i >= 0 {
		if j := strings.Index(msg[i+3:], "@"); j >= 0 && !strings.ContainsAny(msg[i+3:i+3+j], "/ ") {
			return errors.New(msg[:i+3] + "REDACTED" + msg[i+3+j:])
		}
	}
	return err
}

func (p *Publisher) printPlan(plan *Plan, assets []Asset) {
	w := p.log()
	verb := "plan"
	if p.DryRun {
		verb = "dry run, nothing is written"
	}
	fmt.Fprintf(w, "release %s of %s/%s (%s; existing release: %s)\n", plan.Tag, p.Owner, p.Repo, verb, plan.Existing)
	for _, a := range assets {
		fmt.Fprintf(w, "  %-60s %10d bytes  %s\n", a.Name, a.Size, plan.Actions[a.Name])
	}
}

func (p *Publisher) log() io.Writer {
	if p.Log == nil {
		return io.Discard
	}
	return p.Log
}

// DirAssets lists the files of a release folder as assets, sorted by name.
func DirAssets(dir string) ([]Asset, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Asset
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		out = append(out, Asset{Name: e.Name(), Path: dir + string(os.PathSeparator) + e.Name(), Size: fi.Size()})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no release assets (run `go tool mage dist`)", dir)
	}
	return out, nil
}
