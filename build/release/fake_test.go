package release

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/artifact"
)

// fakeGitHub follows GitHub's documented release API closely enough for Publish: drafts (several
// per tag allowed, invisible to the tag lookup), publish, assets with states, 422 on a duplicate
// asset name, and injected faults.
type fakeGitHub struct {
	mu       sync.Mutex
	nextID   int64
	releases map[int64]*fakeRelease
	writes   int
	calls    int
	// faults: request key ("POST upload NAME", "GET tag", ...) -> responses to give before answering
	faults map[string][]fault
	repo   *fakeRepo
	srv    *httptest.Server
	// storage stands in for GitHub's storage host: asset downloads through the API are redirected
	// there, and, like its pre-signed URLs, it refuses a request that carries a token.
	storage     *httptest.Server
	storageAuth []string // the Authorization headers the storage host was sent
	// endless makes the release listing's Link header always point to a next page.
	endless bool
}

type fault struct {
	status  int
	header  map[string]string
	partial bool // an upload: keep a "starter" asset, as a failed upload can
	body    string
}

type fakeRelease struct {
	ID         int64
	Tag        string
	Name       string
	Body       string
	Draft      bool
	Commitish  string // target_commitish as created
	MakeLatest string // make_latest as last sent
	Assets     map[string]*fakeAsset
}

type fakeAsset struct {
	ID    int64
	Name  string
	State string
	Data  []byte
}

func newFakeGitHub(t testing.TB) *fakeGitHub {
	f := &fakeGitHub{nextID: 100, releases: map[int64]*fakeRelease{}, faults: map[string][]fault{}, repo: newFakeRepo()}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	f.storage = httptest.NewServer(http.HandlerFunc(f.serveStorage))
	t.Cleanup(f.storage.Close)
	return f
}

func (f *fakeGitHub) serveStorage(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if auth := r.Header.Get("Authorization"); auth != "" {
		f.storageAuth = append(f.storageAuth, auth)
		http.Error(w, "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>", http.StatusBadRequest)
		return
	}
	id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/asset/"), 10, 64)
	for _, rel := range f.releases {
		for _, a := range rel.Assets {
			if a.ID == id {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write(a.Data)
				return
			}
		}
	}
	http.NotFound(w, r)
}

var (
	reTag      = regexp.MustCompile(`^/api/v3/repos/o/r/releases/tags/(.+)$`)
	reReleases = regexp.MustCompile(`^/api/v3/repos/o/r/releases$`)
	reLatest   = regexp.MustCompile(`^/api/v3/repos/o/r/releases/latest$`)
	reRelease  = regexp.MustCompile(`^/api/v3/repos/o/r/releases/(\d+)$`)
	reAssets   = regexp.MustCompile(`^/api/v3/repos/o/r/releases/(\d+)/assets$`)
	reUpload   = regexp.MustCompile(`^/api/uploads/repos/o/r/releases/(\d+)/assets$`)
	reAsset    = regexp.MustCompile(`^/api/v3/repos/o/r/releases/assets/(\d+)$`)
)

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if r.Method != http.MethodGet {
		f.writes++
	}
	if r.Header.Get("Authorization") != "Bearer secret-token" {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
		return
	}
	key := r.Method + " " + r.URL.Path
	if m := reUpload.FindStringSubmatch(r.URL.Path); m != nil {
		key = "POST upload " + r.URL.Query().Get("name")
	}
	if fs := f.faults[key]; len(fs) > 0 {
		ft := fs[0]
		f.faults[key] = fs[1:]
		if ft.partial {
			id, _ := strconv.ParseInt(reUpload.FindStringSubmatch(r.URL.Path)[1], 10, 64)
			io.CopyN(io.Discard, r.Body, 10)
			name := r.URL.Query().Get("name")
			f.nextID++
			f.releases[id].Assets[name] = &fakeAsset{ID: f.nextID, Name: name, State: "starter"}
		}
		for k, v := range ft.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(ft.status)
		io.WriteString(w, ft.body)
		return
	}
	switch {
	case r.Method == http.MethodGet && reTag.MatchString(r.URL.Path):
		tag := reTag.FindStringSubmatch(r.URL.Path)[1]
		for _, rel := range f.sorted() {
			if rel.Tag == tag && !rel.Draft {
				f.json(w, 200, f.releaseJSON(rel))
				return
			}
		}
		f.json(w, 404, map[string]any{"message": "Not Found"})
	case r.Method == http.MethodGet && reLatest.MatchString(r.URL.Path):
		// The newest published release, as GitHub marks it (make_latest "false" opts out).
		rels := f.sorted()
		for i := len(rels) - 1; i >= 0; i-- {
			if !rels[i].Draft && rels[i].MakeLatest != "false" {
				f.json(w, 200, f.releaseJSON(rels[i]))
				return
			}
		}
		f.json(w, 404, map[string]any{"message": "Not Found"})
	case r.Method == http.MethodGet && reReleases.MatchString(r.URL.Path):
		var out []any
		for _, rel := range f.sorted() {
			out = append(out, f.releaseJSON(rel))
		}
		if f.endless {
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			w.Header().Set("Link", fmt.Sprintf(`<%s%s?per_page=100&page=%d>; rel="next"`, f.srv.URL, r.URL.Path, max(page, 1)+1))
			out = []any{}
		}
		f.json(w, 200, out)
	case r.Method == http.MethodPost && reReleases.MatchString(r.URL.Path):
		var req struct {
			Tag       string `json:"tag_name"`
			Name      string `json:"name"`
			Body      string `json:"body"`
			Draft     bool   `json:"draft"`
			Commitish string `json:"target_commitish"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		for _, rel := range f.releases {
			if rel.Tag == req.Tag && !rel.Draft {
				f.json(w, 422, map[string]any{"message": "Validation Failed", "errors": []any{map[string]string{"resource": "Release", "code": "already_exists", "field": "tag_name"}}})
				return
			}
		}
		f.nextID++
		rel := &fakeRelease{ID: f.nextID, Tag: req.Tag, Name: req.Name, Body: req.Body, Draft: req.Draft, Commitish: req.Commitish, Assets: map[string]*fakeAsset{}}
		f.releases[rel.ID] = rel
		f.json(w, 201, f.releaseJSON(rel))
	case r.Method == http.MethodPatch && reRelease.MatchString(r.URL.Path):
		rel := f.release(reRelease.FindStringSubmatch(r.URL.Path)[1])
		var req map[string]any
		json.NewDecoder(r.Body).Decode(&req)
		if v, ok := req["draft"].(bool); ok {
			rel.Draft = v
		}
		if v, ok := req["name"].(string); ok {
			rel.Name = v
		}
		if v, ok := req["body"].(string); ok {
			rel.Body = v
		}
		if v, ok := req["make_latest"].(string); ok {
			rel.MakeLatest = v
		}
		f.json(w, 200, f.releaseJSON(rel))
	case r.Method == http.MethodGet && reAssets.MatchString(r.URL.Path):
		rel := f.release(reAssets.FindStringSubmatch(r.URL.Path)[1])
		f.json(w, 200, f.assetsJSON(rel))
	case r.Method == http.MethodPost && reUpload.MatchString(r.URL.Path):
		rel := f.release(reUpload.FindStringSubmatch(r.URL.Path)[1])
		name := r.URL.Query().Get("name")
		if _, ok := rel.Assets[name]; ok {
			f.json(w, 422, map[string]any{"message": "Validation Failed", "errors": []any{map[string]string{"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}}})
			return
		}
		if !rel.Draft {
			f.json(w, 422, map[string]any{"message": "Cannot upload assets to an immutable release."})
			return
		}
		data, _ := io.ReadAll(r.Body)
		f.nextID++
		a := &fakeAsset{ID: f.nextID, Name: name, State: "uploaded", Data: data}
		rel.Assets[name] = a
		f.json(w, 201, f.assetJSON(a))
	case r.Method == http.MethodDelete && reAsset.MatchString(r.URL.Path):
		id, _ := strconv.ParseInt(reAsset.FindStringSubmatch(r.URL.Path)[1], 10, 64)
		for _, rel := range f.releases {
			for n, a := range rel.Assets {
				if a.ID == id {
					delete(rel.Assets, n)
					w.WriteHeader(204)
					return
				}
			}
		}
		f.json(w, 404, map[string]any{"message": "Not Found"})
	case r.Method == http.MethodGet && reAsset.MatchString(r.URL.Path):
		id, _ := strconv.ParseInt(reAsset.FindStringSubmatch(r.URL.Path)[1], 10, 64)
		for _, rel := range f.releases {
			for _, a := range rel.Assets {
				if a.ID == id {
					// As GitHub does: the binary is on the storage host, behind a redirect.
					http.Redirect(w, r, f.storage.URL+"/asset/"+strconv.FormatInt(id, 10), http.StatusFound)
					return
				}
			}
		}
		f.json(w, 404, map[string]any{"message": "Not Found"})
	case f.serveRepo(w, r):
	default:
		f.json(w, 404, map[string]any{"message": "Not Found: " + key})
	}
}

func (f *fakeGitHub) sorted() []*fakeRelease {
	var out []*fakeRelease
	for _, r := range f.releases {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (f *fakeGitHub) release(id string) *fakeRelease {
	n, _ := strconv.ParseInt(id, 10, 64)
	return f.releases[n]
}

func (f *fakeGitHub) releaseJSON(r *fakeRelease) map[string]any {
	return map[string]any{"id": r.ID, "tag_name": r.Tag, "name": r.Name, "body": r.Body, "draft": r.Draft, "assets": f.assetsJSON(r),
		"upload_url": f.srv.URL + "/api/uploads/repos/o/r/releases/" + strconv.FormatInt(r.ID, 10) + "/assets{?name,label}"}
}

func (f *fakeGitHub) assetsJSON(r *fakeRelease) []any {
	out := []any{}
	var names []string
	for n := range r.Assets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, f.assetJSON(r.Assets[n]))
	}
	return out
}

// assetJSON is an asset as the API describes it; its url is where the API serves its bytes.
func (f *fakeGitHub) assetJSON(a *fakeAsset) map[string]any {
	return map[string]any{"id": a.ID, "name": a.Name, "state": a.State, "size": len(a.Data),
		"url": f.srv.URL + "/api/v3/repos/o/r/releases/assets/" + strconv.FormatInt(a.ID, 10)}
}

func (f *fakeGitHub) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeGitHub) counts() (calls, writes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.writes
}

func (f *fakeGitHub) client(t testing.TB, log io.Writer) *GitHub {
	c, err := NewClient(f.srv.URL+"/api/v3", "secret-token", f.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return &GitHub{Client: c, Owner: "o", Repo: "r", Log: log, Attempts: 3, Backoff: time.Millisecond,
		sleep: func(ctx context.Context, d time.Duration) error { return nil }}
}

// releaseAssets writes a small release folder: three assets and their SHA256SUMS.
func releaseAssets(t *testing.T, version string) []Asset {
	dir := t.TempDir()
	files := map[string]string{
		"simple-uml-linux-" + version + ".tar.xz":   strings.Repeat("kernel", 200) + version,
		"simple-uml-rootfs-" + version + ".tar.zst": strings.Repeat("rootfs", 500) + version,
		"manifest.json": `{"tag":"v` + version + `"}`,
	}
	var names []string
	for n, body := range files {
		os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644)
		names = append(names, n)
	}
	sums := artifact.Sums{}
	if err := sums.Hash(dir, names...); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, artifact.SumsName), sums.Bytes(), 0o644)
	assets, err := DirAssets(dir)
	if err != nil {
		t.Fatal(err)
	}
	return assets
}

func (f *fakeGitHub) state(t *testing.T) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, r := range f.sorted() {
		fmt.Fprintf(&b, "%s draft=%v:", r.Tag, r.Draft)
		var names []string
		for n, a := range r.Assets {
			names = append(names, n+"("+a.State+")")
		}
		sort.Strings(names)
		b.WriteString(" " + strings.Join(names, " ") + "\n")
	}
	return b.String()
}
