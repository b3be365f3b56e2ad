package release

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/attacktest"
)

// TestAttackReleaseJSON: a release's JSON (from the API, or anyone between) names the assets to
// download. A local path as an asset's URL was read from disk and quoted in the error; another host
// (where the token would go) or a name with a path was taken as it was. Each is refused before
// anything is fetched.
func TestAttackReleaseJSON(t *testing.T) {
	canary := attacktest.NewCanary(t, t.TempDir(), "hostname")
	cases := []struct {
		name, asset, url, want string
	}{
		{"download URL is a local path", "SHA256SUMS", canary.Path, "not an http(s) URL"},
		{"download URL is a file URL", "SHA256SUMS", "file://" + canary.Path, "not an http(s) URL"},
		{"download URL on another host", "SHA256SUMS", "http://127.0.0.2:1/SHA256SUMS", "not on 127.0.0.1"},
		{"download URL in clear, off this machine", "SHA256SUMS", "http://api.github.example/SHA256SUMS", "a token goes over https only"},
		{"asset name with a path", "../../etc/hostname", "", "asset name"},
		{"asset name with a newline", "SHA256SUMS\nx", "", "asset name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var srv *httptest.Server
			fetched := false
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v3/repos/o/r/releases/tags/v1" {
					fetched = true
					http.NotFound(w, r)
					return
				}
				u := c.url
				if u == "" {
					u = srv.URL + "/api/v3/repos/o/r/releases/assets/1"
				}
				json.NewEncoder(w).Encode(map[string]any{"id": 1, "tag_name": "v1", "assets": []map[string]any{
					{"id": 1, "name": c.asset, "state": "uploaded", "url": u, "browser_download_url": u}}})
			}))
			defer srv.Close()
			env := map[string]string{"GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": srv.URL + "/api/v3"}
			_, err := OpenPublished(context.Background(), func(k string) string { return env[k] }, "v1", t.TempDir(), io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if strings.Contains(err.Error(), string(canary.Data)) || fetched {
				t.Errorf("the hostile asset was read: %v (fetched %v)", err, fetched)
			}
			canary.Check(t)
		})
	}
}
