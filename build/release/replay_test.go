package release

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-github/v60/github"
)

// fixtures are GitHub's own recorded responses (@octokit/fixtures), read in place.
var fixtures = filepath.Join("..", "..", "..", "shared", "fixtures", "github")

type exchange struct {
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Status   int             `json:"status"`
	Response json.RawMessage `json:"response"`
	Headers  map[string]any  `json:"headers"`
	Req      map[string]any  `json:"reqheaders"`
	used     bool
}

// replayer answers requests with the recorded exchanges, each once, matched on method, path and
// parsed query; it fails the test on a request nothing recorded.
type replayer struct {
	t    *testing.T
	mu   sync.Mutex
	ex   []*exchange
	body map[string][]byte // upload bodies received, by path
}

func newReplayer(t *testing.T, scenario string) (*replayer, *httptest.Server) {
	data, err := os.ReadFile(filepath.Join(fixtures, scenario, "normalized-fixture.json"))
	if err != nil {
		t.Fatalf("shared fixture missing (tests read ../shared in place): %v", err)
	}
	r := &replayer{t: t, body: map[string][]byte{}}
	if err := json.Unmarshal(data, &r.ex); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *replayer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	path := strings.TrimPrefix(strings.TrimPrefix(req.URL.Path, "/api/uploads"), "/api/v3")
	for _, e := range r.ex {
		if e.used || !strings.EqualFold(e.Method, req.Method) {
			continue
		}
		u, _ := url.Parse(e.Path)
		// per_page only sizes the pages; the recordings used GitHub's default, we ask for 100.
		query := req.URL.Query()
		query.Del("per_page")
		if u.Path != path || !reflect.DeepEqual(u.Query(), query) && !(len(u.Query()) == 0 && len(query) == 0) {
			continue
		}
		e.used = true
		if req.Method == http.MethodPost {
			r.body[path], _ = io.ReadAll(req.Body)
		}
		for k, v := range e.Headers {
			if strings.EqualFold(k, "content-length") || strings.EqualFold(k, "transfer-encoding") {
				continue // the body is re-encoded JSON: its length is the server's to set
			}
			w.Header().Set(k, fmt.Sprint(v)) // some recorded header values are JSON numbers
		}
		w.WriteHeader(e.Status)
		if len(e.Response) > 0 && string(e.Response) != `""` {
			w.Write(e.Response)
		}
		return
	}
	r.t.Errorf("unrecorded request %s %s", req.Method, req.URL)
	http.Error(w, "not recorded", http.StatusTeapot)
}

func (r *replayer) unused() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.ex {
		if !e.used {
			out = append(out, e.Method+" "+e.Path)
		}
	}
	return out
}

func replayGitHub(t *testing.T, srv *httptest.Server, repo string) *GitHub {
	c, err := NewClient(srv.URL+"/api/v3", "0000000000000000000000000000000000000001", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return &GitHub{Client: c, Owner: "octokit-fixture-org", Repo: repo, Attempts: 1}
}

// TestReplayConflict replays GitHub's answers to an upload of a name that exists: 422
// already_exists, the asset list, the delete, and the second upload.
func TestReplayConflict(t *testing.T) {
	r, srv := newReplayer(t, "release-assets-conflict")
	p := replayGitHub(t, srv, "release-assets-conflict")
	ctx := context.Background()
	plan := &Plan{}
	rel, err := p.findRelease(ctx, plan, "v1.0.0")
	if err != nil || rel.GetID() != 1000 || plan.Existing != "published" {
		t.Fatalf("release by tag: %v %v %s", rel, err, plan.Existing)
	}
	file := filepath.Join(fixtures, "release-assets", "test-upload.txt")
	upload := func() error {
		return p.call(ctx, &plan.APICalls, true, "upload", func() (*github.Response, error) {
			f, err := os.Open(file)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			_, resp, err := p.Client.Repositories.UploadReleaseAsset(ctx, p.Owner, p.Repo, 1000, &github.UploadOptions{Name: "test-upload.txt", Label: "test", MediaType: "text/plain"}, f)
			return resp, err
		})
	}
	err = upload()
	var ge *github.ErrorResponse
	if !errors.As(err, &ge) || ge.Response.StatusCode != 422 || len(ge.Errors) != 1 || ge.Errors[0].Code != "already_exists" {
		t.Fatalf("first upload: want 422 already_exists, got %v", err)
	}
	assets, err := p.listAssets(ctx, plan, 1000)
	if err != nil || assets["test-upload.txt"].GetID() != 1000 || assets["test-upload.txt"].GetState() != "uploaded" {
		t.Fatalf("assets: %v %v", assets, err)
	}
	if err := p.call(ctx, &plan.APICalls, true, "delete", func() (*github.Response, error) {
		return p.Client.Repositories.DeleteReleaseAsset(ctx, p.Owner, p.Repo, 1000)
	}); err != nil {
		t.Fatal(err)
	}
	if err := upload(); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(file)
	if got := r.body["/repos/octokit-fixture-org/release-assets-conflict/releases/1000/assets"]; string(got) != string(want) {
		t.Errorf("uploaded body %q, want the file %q", got, want)
	}
	if left := r.unused(); len(left) > 0 {
		t.Errorf("recorded exchanges not replayed: %v", left)
	}
}

// TestReplayAssets replays the upload, list and delete of the release-assets scenario.
func TestReplayAssets(t *testing.T) {
	r, srv := newReplayer(t, "release-assets")
	p := replayGitHub(t, srv, "release-assets")
	ctx := context.Background()
	plan := &Plan{}
	rel, err := p.findRelease(ctx, plan, "v1.0.0")
	if err != nil || rel.GetID() != 1000 {
		t.Fatal(rel, err)
	}
	f, _ := os.Open(filepath.Join(fixtures, "release-assets", "test-upload.txt"))
	a, _, err := p.Client.Repositories.UploadReleaseAsset(ctx, p.Owner, p.Repo, 1000, &github.UploadOptions{Name: "test-upload.txt", Label: "test", MediaType: "text/plain"}, f)
	f.Close()
	if err != nil || a.GetState() != "uploaded" || a.GetSize() == 0 {
		t.Fatalf("upload: %v %v", a, err)
	}
	assets, err := p.listAssets(ctx, plan, 1000)
	if err != nil || len(assets) != 1 {
		t.Fatalf("list: %v %v", assets, err)
	}
	if _, _, err := p.Client.Repositories.GetReleaseAsset(ctx, p.Owner, p.Repo, 1000); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Client.Repositories.EditReleaseAsset(ctx, p.Owner, p.Repo, 1000, &github.ReleaseAsset{Name: github.String("new-filename.txt"), Label: github.String("new label")}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Client.Repositories.DeleteReleaseAsset(ctx, p.Owner, p.Repo, 1000); err != nil {
		t.Fatal(err)
	}
	if left := r.unused(); len(left) > 0 {
		t.Errorf("recorded exchanges not replayed: %v", left)
	}
}
