package release

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const wantComplete = "v6.12.117-1 draft=false: SHA256SUMS(uploaded) manifest.json(uploaded) simple-uml-linux-6.12.117-1.tar.xz(uploaded) simple-uml-rootfs-6.12.117-1.tar.zst(uploaded)\n"

func TestPublishFresh(t *testing.T) {
	f := newFakeGitHub(t)
	var log bytes.Buffer
	p := f.client(t, &log)
	plan, err := p.Publish(context.Background(), "v6.12.117-1", "simple-uml v6.12.117-1", "notes", releaseAssets(t, "6.12.117-1"))
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if got := f.state(t); got != wantComplete {
		t.Fatalf("state:\n%s", got)
	}
	// tag lookup, list releases, create, 4 uploads, publish: one list call for the whole release.
	if plan.Calls != 8 || plan.Writes != 6 {
		t.Errorf("%d calls, %d writes", plan.Calls, plan.Writes)
	}
	if strings.Contains(log.String(), "secret-token") {
		t.Error("the token appears in the output")
	}

	// A rerun on the complete release writes nothing.
	_, writesBefore := f.counts()
	plan, err = p.Publish(context.Background(), "v6.12.117-1", "simple-uml v6.12.117-1", "notes", releaseAssets(t, "6.12.117-1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, writes := f.counts(); writes != writesBefore || plan.Writes != 0 {
		t.Errorf("rerun on a complete release wrote %d times", writes-writesBefore)
	}
	for n, a := range plan.Actions {
		if a != Skip {
			t.Errorf("rerun: %s: %s", n, a)
		}
	}
}

// TestPublishInterrupted: an upload fails with a 502 after GitHub created a "starter" asset, and the
// run gives up; the rerun converges to one release with every asset once.
func TestPublishInterrupted(t *testing.T) {
	f := newFakeGitHub(t)
	p := f.client(t, nil)
	p.Attempts = 1
	f.faults["POST upload simple-uml-rootfs-6.12.117-1.tar.zst"] = []fault{{status: 502, partial: true, body: "Bad Gateway"}}
	assets := releaseAssets(t, "6.12.117-1")
	_, err := p.Publish(context.Background(), "v6.12.117-1", "t", "b", assets)
	if err == nil || !strings.Contains(err.Error(), "upload simple-uml-rootfs-6.12.117-1.tar.zst") {
		t.Fatalf("want the failed upload named, got %v", err)
	}
	if got := f.state(t); !strings.Contains(got, "draft=true") || !strings.Contains(got, "(starter)") {
		t.Fatalf("after the failure:\n%s", got)
	}
	p.Attempts = 3
	plan, err := p.Publish(context.Background(), "v6.12.117-1", "t", "b", assets)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.state(t); got != wantComplete {
		t.Fatalf("after the rerun:\n%s", got)
	}
	if plan.Existing != "draft" || plan.Actions["simple-uml-rootfs-6.12.117-1.tar.zst"] != Replace || plan.Actions["manifest.json"] != Skip || plan.Actions["SHA256SUMS"] != Upload {
		t.Errorf("plan: %+v", plan)
	}
}

func TestPublishRetriesAndRateLimits(t *testing.T) {
	f := newFakeGitHub(t)
	var log bytes.Buffer
	p := f.client(t, &log)
	var waits []time.Duration
	p.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		if d > time.Second {
			time.Sleep(d) // go-github itself refuses calls until the reset: the wait must be real
		}
		return nil
	}
	reset := strconv.FormatInt(time.Now().Add(2*time.Second).Unix(), 10)
	f.faults["GET /api/v3/repos/o/r/releases/tags/v1-1"] = []fault{{status: 403, body: `{"message":"API rate limit exceeded"}`,
		header: map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}}}
	f.faults["POST /api/v3/repos/o/r/releases"] = []fault{{status: 502, body: "Bad Gateway"}, {status: 429, body: `{"message":"Too Many Requests"}`}}
	f.faults["POST upload manifest.json"] = []fault{{status: 500, body: "oops"}}
	if _, err := p.Publish(context.Background(), "v1-1", "t", "b", releaseAssets(t, "1-1")); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if got := f.state(t); !strings.Contains(got, "v1-1 draft=false") || strings.Count(got, "(uploaded)") != 4 {
		t.Fatalf("state:\n%s", got)
	}
	if len(waits) != 4 || waits[0] < time.Second {
		t.Errorf("waits %v: want the rate-limit reset first, then three backoffs", waits)
	}
	if !strings.Contains(log.String(), "rate limit reached; waiting") {
		t.Errorf("no visible rate-limit message:\n%s", log.String())
	}
	// A hard error is not retried.
	f.faults["GET /api/v3/repos/o/r/releases/tags/v2-1"] = []fault{{status: 401, body: `{"message":"Bad credentials"}`}}
	if _, err := p.Publish(context.Background(), "v2-1", "t", "b", releaseAssets(t, "2-1")); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("401: %v", err)
	}
}

func TestPublishDraftsPublishedAndDryRun(t *testing.T) {
	f := newFakeGitHub(t)
	p := f.client(t, nil)
	ctx := context.Background()
	// Two drafts for one tag (GitHub allows it): the oldest is completed, no third one is made.
	for i := 0; i < 2; i++ {
		f.releases[int64(10+i)] = &fakeRelease{ID: int64(10 + i), Tag: "v6.12.117-1", Draft: true, Assets: map[string]*fakeAsset{}}
	}
	plan, err := p.Publish(ctx, "v6.12.117-1", "t", "b", releaseAssets(t, "6.12.117-1"))
	if err != nil || plan.ReleaseID != 10 || len(f.releases) != 2 {
		t.Fatalf("plan %+v, %d releases, %v", plan, len(f.releases), err)
	}
	// A published release whose assets differ is refused, unless replacing is asked for.
	other := releaseAssets(t, "6.12.117-1")
	for i := range other {
		if strings.HasSuffix(other[i].Name, ".tar.xz") {
			other[i].Path, other[i].Size = other[0].Path, other[0].Size // different bytes under the same name
		}
	}
	_, writes := f.counts()
	if _, err := p.Publish(ctx, "v6.12.117-1", "t", "b", other); !errors.Is(err, ErrReplaceRefused) || !strings.Contains(err.Error(), "simple-uml-linux-6.12.117-1.tar.xz: replace") {
		t.Fatalf("changed published release: %v", err)
	}
	if _, w := f.counts(); w != writes {
		t.Error("the refused publish wrote something")
	}
	// Dry run: the plan, and no writes.
	p.DryRun = true
	var log bytes.Buffer
	p.Log = &log
	p.Replace = true
	if _, err := p.Publish(ctx, "v9-1", "t", "b", releaseAssets(t, "9-1")); err != nil {
		t.Fatal(err)
	}
	if _, w := f.counts(); w != writes || !strings.Contains(log.String(), "dry run") || !strings.Contains(log.String(), "upload") {
		t.Errorf("dry run wrote %d times:\n%s", w-writes, log.String())
	}
}

func TestNewClientEnterprise(t *testing.T) {
	c, err := NewClient("https://ghe.example/api/v3", "", nil)
	if err != nil || c.BaseURL.String() != "https://ghe.example/api/v3/" || c.UploadURL.String() != "https://ghe.example/api/uploads/" {
		t.Fatalf("%v %v %v", c.BaseURL, c.UploadURL, err)
	}
	c, _ = NewClient("", "", nil)
	if c.BaseURL.String() != "https://api.github.com/" {
		t.Errorf("default: %v", c.BaseURL)
	}
}

// TestPublishAgainstGitHubsBehaviour: what GitHub does and the fake did not, each case once.
func TestPublishAgainstGitHubsBehaviour(t *testing.T) {
	ctx := context.Background()
	const tag = "v6.12.117-1"
	uploadedDraft := func(f *fakeGitHub, assets []Asset, extra ...string) {
		rel := &fakeRelease{ID: 10, Tag: tag, Draft: true, Assets: map[string]*fakeAsset{}}
		for i, a := range assets {
			if a.Name == "SHA256SUMS" {
				continue // a run that stopped before its last upload
			}
			data, _ := os.ReadFile(a.Path)
			rel.Assets[a.Name] = &fakeAsset{ID: int64(50 + i), Name: a.Name, State: "uploaded", Data: data}
		}
		for i, n := range extra {
			rel.Assets[n] = &fakeAsset{ID: int64(90 + i), Name: n, State: "uploaded", Data: []byte("stale")}
		}
		f.releases[10] = rel
	}

	t.Run("the token stays on GitHub's API host", func(t *testing.T) {
		f := newFakeGitHub(t)
		assets := releaseAssets(t, "6.12.117-1")
		uploadedDraft(f, assets)
		p := f.client(t, nil)
		plan, err := p.Publish(ctx, tag, "t", "b", assets)
		if err != nil {
			t.Fatal(err)
		}
		// Without SHA256SUMS on the draft, each uploaded asset is downloaded to compare.
		if plan.Actions["manifest.json"] != Skip {
			t.Errorf("plan %v", plan.Actions)
		}
		if len(f.storageAuth) > 0 {
			t.Errorf("the storage host was sent %q", f.storageAuth)
		}
	})

	t.Run("a retried upload after 502 removes what the failed one left", func(t *testing.T) {
		f := newFakeGitHub(t)
		assets := releaseAssets(t, "6.12.117-1")
		f.faults["POST upload manifest.json"] = []fault{{status: 502, partial: true}}
		if _, err := f.client(t, nil).Publish(ctx, tag, "t", "b", assets); err != nil {
			t.Fatal(err)
		}
		if got := f.state(t); !strings.Contains(got, "manifest.json(uploaded)") || strings.Contains(got, "starter") {
			t.Errorf("release: %s", got)
		}
	})

	t.Run("429 waits as long as Retry-After says", func(t *testing.T) {
		f := newFakeGitHub(t)
		f.faults["GET /api/v3/repos/o/r/releases/tags/"+tag] = []fault{{status: 429, header: map[string]string{"Retry-After": "30"}, body: `{"message":"rate limited"}`}}
		p := f.client(t, nil)
		var waits []time.Duration
		p.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
		if _, err := p.Publish(ctx, tag, "t", "b", releaseAssets(t, "6.12.117-1")); err != nil {
			t.Fatal(err)
		}
		if len(waits) != 1 || waits[0] != 30*time.Second {
			t.Errorf("waits %v, want 30s", waits)
		}
	})

	t.Run("assets dist lacks are removed from a draft, and the plan says so", func(t *testing.T) {
		f := newFakeGitHub(t)
		assets := releaseAssets(t, "6.12.117-1")
		uploadedDraft(f, assets, "notes-old.md")
		var log bytes.Buffer
		plan, err := f.client(t, &log).Publish(ctx, tag, "t", "b", assets)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Actions["notes-old.md"] != Delete || !strings.Contains(log.String(), "notes-old.md") {
			t.Errorf("plan %v\n%s", plan.Actions, log.String())
		}
		if got := f.state(t); strings.Contains(got, "notes-old.md") {
			t.Errorf("the stale asset was published: %s", got)
		}
	})

	t.Run("the dry run refuses what the real run refuses", func(t *testing.T) {
		f := newFakeGitHub(t)
		assets := releaseAssets(t, "6.12.117-1")
		uploadedDraft(f, assets)
		f.releases[10].Assets["manifest.json"].Data = []byte(`{"tag":"v6.12.117-2"}`) // same size, other bytes
		p := f.client(t, nil)
		_, writes := f.counts()
		for _, dry := range []bool{true, false} {
			p.DryRun = dry
			if _, err := p.Publish(ctx, tag, "t", "b", assets); !errors.Is(err, ErrReplaceRefused) {
				t.Errorf("dry run %v: %v", dry, err)
			}
		}
		if _, w := f.counts(); w != writes {
			t.Errorf("%d writes for refused publishes", w-writes)
		}
	})

	t.Run("a plan without a token says drafts are hidden from it", func(t *testing.T) {
		f := newFakeGitHub(t)
		p := f.client(t, nil)
		p.DryRun, p.Anonymous = true, true
		plan, err := p.Publish(ctx, tag, "t", "b", releaseAssets(t, "6.12.117-1"))
		if err != nil || !strings.Contains(plan.Existing, "GitHub hides draft releases") {
			t.Errorf("existing %q, %v", plan.Existing, err)
		}
	})

	t.Run("a listing whose Link header never ends", func(t *testing.T) {
		f := newFakeGitHub(t)
		f.endless = true
		_, err := f.client(t, nil).Publish(ctx, tag, "t", "b", releaseAssets(t, "6.12.117-1"))
		if err == nil || !strings.Contains(err.Error(), "Link header does not end") {
			t.Fatalf("got %v", err)
		}
		if calls, _ := f.counts(); calls > maxPages+5 {
			t.Errorf("%d calls", calls)
		}
	})
}

// TestPublishTagsTheBuiltCommitAndLatest: the release is created at the commit that was built and
// marked latest only when it is the newest of its series.
func TestPublishTagsTheBuiltCommitAndLatest(t *testing.T) {
	f := newFakeGitHub(t)
	ctx := context.Background()
	p := f.client(t, nil)
	p.Commit, p.Latest = "0123456789abcdef0123456789abcdef01234567", false
	if _, err := p.Publish(ctx, "v6.12.117-1", "t", "b", releaseAssets(t, "6.12.117-1")); err != nil {
		t.Fatal(err)
	}
	rel := f.releases[101]
	if rel.Commitish != p.Commit || rel.MakeLatest != "false" {
		t.Errorf("created at %q, make_latest %q", rel.Commitish, rel.MakeLatest)
	}
	f.releases[200] = &fakeRelease{ID: 200, Tag: "v6.12.300-1", Draft: true, Assets: map[string]*fakeAsset{}} // drafts do not count
	for tag, want := range map[string]bool{"v6.12.116-1": false, "v6.12.117-1": true, "v6.12.117-2": true, "v6.12.118-1": true, "v6.6.50-1": true, "v6.13-1": true} {
		if got, err := p.NewestOfSeries(ctx, tag); err != nil || got != want {
			t.Errorf("NewestOfSeries(%s) = %v, %v; want %v", tag, got, err, want)
		}
	}
	if _, err := p.NewestOfSeries(ctx, "latest"); err == nil {
		t.Error("a tag that is no version was accepted")
	}
}

// TestDirAssetsRefusesNamesGitHubRenames: a name GitHub would sanitize never converges (every
// rerun uploads it again, and fails), so it is refused before anything is sent.
func TestDirAssetsRefusesNamesGitHubRenames(t *testing.T) {
	for _, name := range []string{"notes copy.txt", "a+b.tar.xz", "x~1", "trailing.", "ü.txt"} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "SHA256SUMS"), []byte("x"), 0o644)
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644)
		if _, err := DirAssets(dir); err == nil || !strings.Contains(err.Error(), "GitHub renames") {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// TestPublishKilledAtEveryStep stops a publish at each step (after the draft is created, in the
// middle of an upload that leaves a starter asset, before the publish) and reruns it: the rerun
// converges to the complete release with the fewest writes that step leaves to do.
func TestPublishKilledAtEveryStep(t *testing.T) {
	const tag = "v6.12.117-1"
	cases := []struct {
		step       string
		fault      string
		partial    bool
		rerunWrite int // writes of the rerun
	}{
		{"after the draft is created", "POST upload manifest.json", false, 4 + 1},                         // 4 uploads, publish
		{"in the middle of an upload", "POST upload simple-uml-linux-6.12.117-1.tar.xz", true, 1 + 3 + 1}, // delete the starter, 3 uploads, publish
		{"before the publish", "PATCH /api/v3/repos/o/r/releases/101", false, 1},                          // publish
	}
	for _, c := range cases {
		t.Run(c.step, func(t *testing.T) {
			f := newFakeGitHub(t)
			p := f.client(t, nil)
			p.Attempts = 1
			f.faults[c.fault] = []fault{{status: 400, partial: c.partial, body: `{"message":"killed"}`}}
			assets := releaseAssets(t, "6.12.117-1")
			if _, err := p.Publish(context.Background(), tag, "t", "b", assets); err == nil {
				t.Fatal("the killed run succeeded")
			}
			plan, err := p.Publish(context.Background(), tag, "t", "b", assets)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.state(t); got != wantComplete {
				t.Errorf("after the rerun:\n%s", got)
			}
			if plan.Writes != c.rerunWrite {
				t.Errorf("the rerun wrote %d times, want %d (%v)", plan.Writes, c.rerunWrite, plan.Actions)
			}
		})
	}
}
