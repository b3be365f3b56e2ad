// Package release is simple-uml's only GitHub client (go-github). It publishes release assets as one
// GitHub release: find or create one draft for the tag, upload what is missing, publish last; a rerun
// after any failure converges to the same release, and a complete release is left untouched. It
// reads a published release back (Published): SHA256SUMS and the manifest first, checked against
// each other, then assets through the download cache, each checked against its digest. It opens and
// closes bump pull requests.
package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/retry"
)

// Asset is a file to publish.
type Asset struct {
	Name string
	Path string
	Size int64
}

// GitHub publishes releases to one repository and opens and closes its bump pull requests.
type GitHub struct {
	Client      *github.Client
	Owner, Repo string
	Log         io.Writer
	Replace     bool          // replace assets that differ, also on a published release
	DryRun      bool          // print the plan, write nothing
	Attempts    int           // per call; 0 means 5
	Backoff     time.Duration // first retry wait, doubled each time; 0 means 2s
	MaxWait     time.Duration // longest rate-limit wait accepted; 0 means one hour
	// Commit is the commit the release's tag is made at when Publish creates the release
	// (target_commitish): the one that was built. Empty leaves GitHub's default, its default branch.
	Commit string
	// Anonymous says the client has no token: GitHub then hides draft releases, so a plan cannot
	// see one and says so.
	Anonymous bool
	// Latest says whether the release becomes the repository's "latest" when published
	// (make_latest), which `mage fetch` installs by default.
	Latest bool
	// Storage follows GitHub's redirect from an asset to its storage host. It must not carry the
	// token: the storage host is another party, and its pre-signed URLs refuse one. nil means a
	// plain http.Client.
	Storage *http.Client
	sleep   func(context.Context, time.Duration) error
}

// maxPages bounds a listing: a server whose Link header always points on must not keep us going.
const maxPages = 100

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
	if !fetch.TokenSafe(u) {
		// The download carries the token to the API's host.
		return fmt.Errorf("asset %s: download URL %q is plain http: a token goes over https only", asset, raw)
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
	Delete  Action = "delete (the release has it, dist's release folder has not)"
)

// ErrReplaceRefused is why Publish stops short of changing what is already there: a published
// release, or an uploaded asset that differs. GitHub.Replace allows it.
var ErrReplaceRefused = errors.New("refusing to replace")

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
func (p *GitHub) Publish(ctx context.Context, tag, title, body string, assets []Asset) (*Plan, error) {
	plan := &Plan{Tag: tag, Existing: "none", Actions: map[string]Action{}}
	sort.Slice(assets, func(i, j int) bool { return uploadOrder(assets[i].Name) < uploadOrder(assets[j].Name) })
	rel, remote, err := p.plan(ctx, plan, tag, assets)
	if err != nil {
		return plan, err
	}
	p.printPlan(plan)
	// One planner for both runs: what the real run would refuse, the dry run refuses too.
	if err := p.refusal(plan, remote); err != nil {
		return plan, err
	}
	if p.DryRun {
		return plan, nil
	}
	if rel == nil {
		if rel, err = p.createDraft(ctx, plan, tag, title, body); err != nil {
			return plan, err
		}
	}
	if err := p.apply(ctx, plan, rel.GetID(), remote, assets); err != nil {
		return plan, err
	}
	if err := p.publishDraft(ctx, plan, rel, title, body); err != nil {
		return plan, err
	}
	fmt.Fprintf(p.log(), "release %s published: %d API calls, %d of them writes\n", tag, plan.Calls, plan.Writes)
	return plan, nil
}

// plan finds the release of tag and its assets, and decides an action for each asset: upload what
// is missing, skip what is there with the same bytes, replace what differs, delete what dist has not.
func (p *GitHub) plan(ctx context.Context, plan *Plan, tag string, assets []Asset) (*github.RepositoryRelease, map[string]*github.ReleaseAsset, error) {
	rel, err := p.findRelease(ctx, plan, tag)
	if err != nil {
		return nil, nil, err
	}
	var remote map[string]*github.ReleaseAsset
	sumsMatch := false
	if rel != nil {
		plan.ReleaseID = rel.GetID()
		if remote, err = p.listAssets(ctx, plan, rel.GetID()); err != nil {
			return nil, nil, err
		}
		if sumsMatch, err = p.sumsMatch(ctx, plan, remote, assets); err != nil {
			return nil, nil, err
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
				return nil, nil, err
			}
			plan.Actions[a.Name] = Replace
			if same {
				plan.Actions[a.Name] = Skip
			}
		}
	}
	for name := range remote {
		if _, ok := plan.Actions[name]; !ok {
			plan.Actions[name] = Delete
		}
	}
	return rel, remote, nil
}

// createDraft creates the release as a draft at the commit that was built.
func (p *GitHub) createDraft(ctx context.Context, plan *Plan, tag, title, body string) (*github.RepositoryRelease, error) {
	r := &github.RepositoryRelease{TagName: github.String(tag), Name: github.String(title), Body: github.String(body), Draft: github.Bool(true)}
	if p.Commit != "" {
		r.TargetCommitish = github.String(p.Commit)
	}
	var rel *github.RepositoryRelease
	err := p.call(ctx, &plan.APICalls, true, "create the draft release", func() (*github.Response, error) {
		var resp *github.Response
		var err error
		rel, resp, err = p.Client.Repositories.CreateRelease(ctx, p.Owner, p.Repo, r)
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	plan.ReleaseID = rel.GetID()
	return rel, nil
}

// apply carries out the plan's deletions, then its replacements and uploads, in upload order.
func (p *GitHub) apply(ctx context.Context, plan *Plan, id int64, remote map[string]*github.ReleaseAsset, assets []Asset) error {
	for _, name := range sortedNames(plan.Actions) {
		if plan.Actions[name] != Delete {
			continue
		}
		if err := p.deleteAsset(ctx, plan, remote[name]); err != nil {
			return err
		}
	}
	for _, a := range assets {
		switch plan.Actions[a.Name] {
		case Skip:
			continue
		case Replace:
			if err := p.deleteAsset(ctx, plan, remote[a.Name]); err != nil {
				return err
			}
		}
		if err := p.upload(ctx, plan, id, a); err != nil {
			return err
		}
	}
	return nil
}

// publishDraft publishes the release last, with its title, notes and "latest" mark, unless it is
// published with them already.
func (p *GitHub) publishDraft(ctx context.Context, plan *Plan, rel *github.RepositoryRelease, title, body string) error {
	if !rel.GetDraft() && rel.GetName() == title && rel.GetBody() == body {
		return nil
	}
	edit := &github.RepositoryRelease{Name: github.String(title), Body: github.String(body), Draft: github.Bool(false),
		MakeLatest: github.String(strconv.FormatBool(p.Latest))}
	return p.call(ctx, &plan.APICalls, true, "publish the release", func() (*github.Response, error) {
		_, resp, err := p.Client.Repositories.EditRelease(ctx, p.Owner, p.Repo, rel.GetID(), edit)
		return resp, err
	})
}

// refusal says why the plan may not run without Replace: it changes a published release, or
// replaces an uploaded asset of a draft (one in state "starter", left by a failed upload, is not a
// real asset).
func (p *GitHub) refusal(plan *Plan, remote map[string]*github.ReleaseAsset) error {
	if p.Replace {
		return nil
	}
	var changed []string
	for _, name := range sortedNames(plan.Actions) {
		a := plan.Actions[name]
		if a == Skip || (a == Upload || a == Delete) && plan.Existing != "published" {
			continue // a draft is ours to complete: what it lacks is added, what dist lacks removed
		}
		if r := remote[name]; plan.Existing == "published" || r != nil && r.GetState() != "starter" {
			changed = append(changed, name+": "+string(a))
		}
	}
	if len(changed) == 0 {
		return nil
	}
	return fmt.Errorf("release %s (%s) would change: %s: %w", plan.Tag, plan.Existing, strings.Join(changed, "; "), ErrReplaceRefused)
}

func (p *GitHub) deleteAsset(ctx context.Context, plan *Plan, r *github.ReleaseAsset) error {
	return p.call(ctx, &plan.APICalls, true, "delete the release's "+r.GetName(), func() (*github.Response, error) {
		return p.Client.Repositories.DeleteReleaseAsset(ctx, p.Owner, p.Repo, r.GetID())
	})
}

func sortedNames(actions map[string]Action) []string {
	names := make([]string, 0, len(actions))
	for n := range actions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// NewestOfSeries reports whether tag (v<version>-<revision>) is newer than every published release
// of its kernel series (the version's first two numbers): then it is the one to mark "latest".
func (p *GitHub) NewestOfSeries(ctx context.Context, tag string) (bool, error) {
	mine, ok := parseTag(tag)
	if !ok {
		return false, fmt.Errorf("release tag %q is not v<version>-<revision>", tag)
	}
	newest := true
	var n APICalls
	err := p.eachRelease(ctx, &n, func(r *github.RepositoryRelease) bool {
		other, ok := parseTag(r.GetTagName())
		if ok && !r.GetDraft() && other[0] == mine[0] && other[1] == mine[1] && !lessTag(other, mine) && r.GetTagName() != tag {
			newest = false
		}
		return newest
	})
	return newest && err == nil, err
}

// eachRelease hands the repository's releases, page by page, to visit until it returns false.
func (p *GitHub) eachRelease(ctx context.Context, n *APICalls, visit func(*github.RepositoryRelease) bool) error {
	opts := &github.ListOptions{PerPage: 100}
	for {
		var page []*github.RepositoryRelease
		var resp *github.Response
		if err := p.call(ctx, n, false, "list releases", func() (*github.Response, error) {
			var err error
			page, resp, err = p.Client.Repositories.ListReleases(ctx, p.Owner, p.Repo, opts)
			return resp, err
		}); err != nil {
			return err
		}
		for _, r := range page {
			if !visit(r) {
				return nil
			}
		}
		if resp == nil || resp.NextPage == 0 {
			return nil
		}
		if opts.Page = resp.NextPage; opts.Page > maxPages {
			return fmt.Errorf("list releases: more than %d pages of %d; the server's Link header does not end", maxPages, opts.PerPage)
		}
	}
}

// parseTag reads v6.12.117-1 as [6 12 117 1] (a version without a patch level as patch 0).
func parseTag(tag string) ([4]int, bool) {
	var out [4]int
	v, rev, ok := strings.Cut(strings.TrimPrefix(tag, "v"), "-")
	if !ok || !strings.HasPrefix(tag, "v") {
		return out, false
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return out, false
	}
	for i, s := range append(parts, make([]string, 3-len(parts))...) {
		if s == "" && i == 2 {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return out, false
		}
		out[i] = n
	}
	r, err := strconv.Atoi(rev)
	if err != nil || r < 0 {
		return out, false
	}
	out[3] = r
	return out, true
}

func lessTag(a, b [4]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
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
func (p *GitHub) findRelease(ctx context.Context, plan *Plan, tag string) (*github.RepositoryRelease, error) {
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
	if err := p.eachRelease(ctx, &plan.APICalls, func(r *github.RepositoryRelease) bool {
		if r.GetDraft() && r.GetTagName() == tag {
			drafts = append(drafts, r)
		}
		return true
	}); err != nil {
		return nil, err
	}
	if len(drafts) == 0 {
		if p.Anonymous {
			plan.Existing = "none visible: without a token GitHub hides draft releases, so a draft may exist"
		}
		return nil, nil
	}
	sort.Slice(drafts, func(i, j int) bool { return drafts[i].GetID() < drafts[j].GetID() })
	if len(drafts) > 1 {
		fmt.Fprintf(p.log(), "note: %d draft releases for %s; using the oldest (id %d)\n", len(drafts), tag, drafts[0].GetID())
	}
	plan.Existing = "draft"
	return drafts[0], nil
}

func (p *GitHub) listAssets(ctx context.Context, plan *Plan, id int64) (map[string]*github.ReleaseAsset, error) {
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
		if opts.Page = resp.NextPage; opts.Page > maxPages {
			return nil, fmt.Errorf("list release assets: more than %d pages of %d; the server's Link header does not end", maxPages, opts.PerPage)
		}
	}
}

// sumsMatch reports whether the release's uploaded SHA256SUMS is the one being published: then an
// uploaded asset of the same name and size has the same digest.
func (p *GitHub) sumsMatch(ctx context.Context, plan *Plan, remote map[string]*github.ReleaseAsset, assets []Asset) (bool, error) {
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
		rc, err := p.download(ctx, r.GetID())
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
func (p *GitHub) sameDigest(ctx context.Context, plan *Plan, r *github.ReleaseAsset, a Asset) (bool, error) {
	local, err := digest.File(a.Path)
	if err != nil {
		return false, err
	}
	var remote string
	err = p.call(ctx, &plan.APICalls, false, "download "+a.Name+" to compare", func() (*github.Response, error) {
		rc, err := p.download(ctx, r.GetID())
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		remote, err = digest.Reader(rc)
		return nil, err
	})
	return remote == local, err
}

// download opens an asset through the API (the token goes to the API host only) and follows its
// redirect to the storage host with the Storage client, which carries none.
func (p *GitHub) download(ctx context.Context, id int64) (io.ReadCloser, error) {
	storage := p.Storage
	if storage == nil {
		storage = &http.Client{}
	}
	rc, _, err := p.Client.Repositories.DownloadReleaseAsset(ctx, p.Owner, p.Repo, id, storage)
	return rc, err
}

// upload uploads an asset. A failed upload can leave an asset of that name behind (state
// "starter", GitHub documents), which makes the next attempt fail with 422 already_exists: before
// each retry, what is left of the name is removed.
func (p *GitHub) upload(ctx context.Context, plan *Plan, id int64, a Asset) error {
	attempt := 0
	return p.call(ctx, &plan.APICalls, true, "upload "+a.Name, func() (*github.Response, error) {
		if attempt++; attempt > 1 {
			if err := p.removeLeftover(ctx, plan, id, a.Name); err != nil {
				return nil, retry.Permanent(err) // removeLeftover made its own retries
			}
		}
		// An *os.File body cannot be replayed: a new one for every attempt.
		f, err := os.Open(a.Path)
		if err != nil {
			return nil, retry.Permanent(err)
		}
		defer f.Close()
		_, resp, err := p.Client.Repositories.UploadReleaseAsset(ctx, p.Owner, p.Repo, id,
			&github.UploadOptions{Name: a.Name, MediaType: mediaType(a.Name)}, f)
		return resp, err
	})
}

// removeLeftover deletes the asset called name from release id, if a failed upload left one.
func (p *GitHub) removeLeftover(ctx context.Context, plan *Plan, id int64, name string) error {
	remote, err := p.listAssets(ctx, plan, id)
	if err != nil {
		return err
	}
	left, ok := remote[name]
	if !ok {
		return nil
	}
	fmt.Fprintf(p.log(), "removing what the failed upload left of %s (state %s)\n", name, left.GetState())
	return p.deleteAsset(ctx, plan, left)
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

// call runs one API call with retries: network errors, 5xx and 429 are retried with backoff; a rate
// limit is waited out (with a message); anything else fails at once.
func (p *GitHub) call(ctx context.Context, n *APICalls, write bool, what string, f func() (*github.Response, error)) error {
	policy := retry.Policy{Attempts: p.Attempts, Backoff: p.Backoff, MaxWait: p.MaxWait, Sleep: p.sleep,
		Log: func(err error, wait time.Duration, i, attempts int) {
			fmt.Fprintf(p.log(), "%s failed (%v); retrying in %s (%d/%d)\n", what, redact(err), wait.Round(time.Millisecond), i, attempts-1)
		}}
	if policy.Attempts <= 0 {
		policy.Attempts = 5
	}
	if policy.Backoff <= 0 {
		policy.Backoff = 2 * time.Second
	}
	if policy.MaxWait <= 0 {
		policy.MaxWait = time.Hour
	}
	err := policy.Do(ctx, func() error {
		n.Calls++
		if write {
			n.Writes++
		}
		resp, err := f()
		if err == nil {
			return nil
		}
		return p.classify(err, resp)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, redact(err))
	}
	return nil
}

// classify marks a failed call's error for retry.Policy: rate limits wait as GitHub asks, 5xx and
// network errors retry with backoff, anything else is permanent.
func (p *GitHub) classify(err error, resp *github.Response) error {
	if retry.IsPermanent(err) {
		return err
	}
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	switch {
	case errors.As(err, &rl):
		delay := time.Until(rl.Rate.Reset.Time) + time.Second
		fmt.Fprintf(p.log(), "GitHub rate limit reached; waiting %s until it resets\n", delay.Round(time.Second))
		return retry.After(err, delay)
	case errors.As(err, &abuse):
		delay := abuse.GetRetryAfter()
		if delay <= 0 {
			delay = time.Minute
		}
		fmt.Fprintf(p.log(), "GitHub secondary rate limit; waiting %s\n", delay.Round(time.Second))
		return retry.After(err, delay)
	case resp != nil && resp.StatusCode == http.StatusTooManyRequests:
		// go-github reads only 403 as a rate limit; GitHub also answers 429 with Retry-After.
		if after := retryAfter(resp.Header.Get("Retry-After")); after > 0 {
			fmt.Fprintf(p.log(), "GitHub rate limit (429); waiting %s as it asks\n", after.Round(time.Second))
			return retry.After(err, after)
		}
		return err
	case resp != nil && resp.StatusCode >= 500, resp == nil && isNetwork(err):
		return err
	}
	return retry.Permanent(err)
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
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

func (p *GitHub) printPlan(plan *Plan) {
	w := p.log()
	verb := "plan"
	if p.DryRun {
		verb = "dry run, nothing is written"
	}
	fmt.Fprintf(w, "release %s of %s/%s (%s; existing release: %s)\n", plan.Tag, p.Owner, p.Repo, verb, plan.Existing)
	for _, name := range sortedNames(plan.Actions) {
		fmt.Fprintf(w, "  %-60s %s\n", name, plan.Actions[name])
	}
}

func (p *GitHub) log() io.Writer {
	if p.Log == nil {
		return io.Discard
	}
	return p.Log
}

// githubKeepsName reports whether GitHub keeps an asset's name as uploaded: it renames names with
// special or non-alphanumeric characters, and leading or trailing periods.
func githubKeepsName(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
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
		if !githubKeepsName(e.Name()) {
			return nil, fmt.Errorf("%s: GitHub renames asset names with characters other than letters, digits, '.', '-' and '_' "+
				"(or a leading or trailing '.'), so the release would never match it: rename it, or make the release again (`go tool mage dist`)", e.Name())
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
