package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/uml"
	"github.com/simple-uml/simple-uml/build/usernet"
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
			cfg := rootfsConfig(t, t.TempDir(), nil)
			_, err := VerifyRelease(context.Background(), cfg, func(k string) string { return env[k] }, "v1", testLog(t))
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

// TestAttackHostPathsInRelease: a local repository's folder (a home folder, a user name) was written
// into the manifest, the SBOM and the image's package database. No release asset, decompressed,
// holds the folder the test's files live in.
func TestAttackHostPathsInRelease(t *testing.T) {
	requireImageTools(t)
	repo := newXbpsRepo(t, busyboxPackages(t, false))
	repo.URL = repo.Dir // a local folder, as a user's own repository often is
	cfg := rootfsConfig(t, recipeDir(t, repo, "", nil), nil)
	if _, err := Rootfs(context.Background(), cfg, "", testLog(t)); err != nil {
		t.Fatal(err)
	}
	fakeKernelDist(t, cfg.Paths.Dist)
	res, err := Dist(context.Background(), cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	hostDir := filepath.Dir(t.TempDir()) // every folder of this test is below it
	for _, name := range res.Assets {
		data, err := os.ReadFile(filepath.Join(res.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".zst") {
			zr, err := zstd.NewReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			data, err = io.ReadAll(zr)
			zr.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		if bytes.Contains(data, []byte(hostDir)) {
			i := bytes.Index(data, []byte(hostDir))
			t.Errorf("%s holds the host path %s: %q", name, hostDir, data[max(0, i-60):min(len(data), i+len(hostDir)+20)])
		}
	}
	if n := len(res.Assets); n < 5 {
		t.Fatalf("only %d assets were checked", n)
	}
}

// TestBootSaysWhatIsOpen: the default configuration opens no door to the host, and every boot says
// which doors a setting opened.
func TestBootSaysWhatIsOpen(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"HOME": t.TempDir()}, nil)
	if cfg.Boot.Net != "none" || cfg.Boot.Hostfs != "" {
		t.Fatalf("default boot settings open doors: net %q, hostfs %q", cfg.Boot.Net, cfg.Boot.Hostfs)
	}
	if n, err := bootNet(cfg, "box"); err != nil || n != nil {
		t.Fatalf("default network: %+v, %v", n, err)
	}
	if cfg.Boot.HostAccess {
		t.Fatal("host access is open by default")
	}
	// Doors that need a network are refused without one, not silently dropped.
	for _, extra := range []map[string]string{{"SUML_BOOT_HOST_ACCESS": "true"}, {"SUML_BOOT_FORWARD": "2222:22"}} {
		cfg := loadConfig(t, map[string]string{"HOME": t.TempDir()}, extra)
		if _, err := bootNet(cfg, "box"); err == nil || !strings.Contains(err.Error(), `boot.net = "user"`) {
			t.Errorf("%v without a network: %v", extra, err)
		}
	}
	share := t.TempDir()
	cases := []struct {
		opts uml.Options
		want []string
	}{
		{uml.Options{}, []string{"network: none", "host files: none shared"}},
		{uml.Options{Net: &uml.Net{Transport: uml.UserNet}}, []string{"network: user-mode", "host services: closed"}},
		{uml.Options{Hostfs: share, Net: &uml.Net{Transport: uml.UserNet, HostAccess: true, Forwards: []usernet.Forward{{Host: 2222, Guest: 22}}}},
			[]string{"OPEN: the host's loopback services are reachable as 10.0.2.2", "forward: host 127.0.0.1:2222 -> guest port 22", "host files: OPEN: " + share + " is shared"}},
		{uml.Options{Net: &uml.Net{Transport: "tuntap,,,tap0"}}, []string{"network: OPEN: tuntap,,,tap0"}},
	}
	for _, c := range cases {
		var out strings.Builder
		describeBoot(&out, &guest{opts: c.opts, kernel: &manifest.KernelRecord{Version: "6.12.117"}, rootfs: &manifest.RootfsRecord{}, throwaway: &files.PrivateDir{}})
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("banner lacks %q:\n%s", w, out.String())
			}
		}
	}
}
