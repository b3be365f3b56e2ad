package rootfs

import (
	"archive/tar"
	"io"

	"context"
	"github.com/simple-uml/simple-uml/build/xbps"
	"howett.net/plist"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

// hostileIndexRepo writes a served repository of one good package whose index entry is then changed
// by edit, as anyone who controls the (unsigned) index could change it.
func hostileIndexRepo(t *testing.T, edit func(entry map[string]any)) (url string) {
	t.Helper()
	dir := t.TempDir()
	repo := xbpstest.Repo{Dir: dir, Arch: "x86_64"}
	pkg := xbpstest.Package{Pkgver: "base-sh-1.0_1", Files: map[string]xbpstest.File{"./usr/bin/sh": {Data: []byte("#!\n"), Mode: 0o755}}}
	if err := repo.Write([]xbpstest.Package{pkg}); err != nil {
		t.Fatal(err)
	}
	index := readIndexDict(t, filepath.Join(dir, "x86_64-repodata"))
	edit(index["base-sh"].(map[string]any))
	if err := repo.WriteRepodata(index); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAttackIndexDigestIsAPath is the review's critical finding: a filename-sha256 of 64 characters
// that is a path made the cache delete and rewrite a file outside it. The index is refused where it is
// read, naming the entry, and the cache refuses such a digest on its own.
func TestAttackIndexDigestIsAPath(t *testing.T) {
	home := t.TempDir()
	canary := attacktest.NewCanary(t, filepath.Join(home, "victims"), ".profile")
	cacheDir := filepath.Join(home, "cache")
	// Relative to <cache>/sha256/, the 64 characters climb to home/victims/.profile.
	hostile := strings.Repeat("./", 21) + "../../victims/.profile"
	if len(hostile) != 64 {
		t.Fatalf("hostile digest is %d characters", len(hostile))
	}
	cases := []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"digest is a path", func(e map[string]any) { e["filename-sha256"] = hostile }, "filename-sha256"},
		{"digest in upper case", func(e map[string]any) { e["filename-sha256"] = strings.ToUpper(e["filename-sha256"].(string)) }, "filename-sha256"},
		{"pkgver with a newline", func(e map[string]any) { e["pkgver"] = "base-sh-1.0_1\npid 1: rm -rf ~" }, "pkgver"},
		{"pkgver with a slash", func(e map[string]any) { e["pkgver"] = "base-sh-../../../victims/.profile#-1.0_1" }, "pkgver"},
		{"architecture with a slash", func(e map[string]any) { e["architecture"] = "../../victims/.profile#" }, "architecture"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url := hostileIndexRepo(t, c.edit)
			r := &Recipe{Name: "attack", Path: "attack.toml", Arch: "x86_64", Packages: []string{"base-sh"}, ImageSize: "64M",
				Repositories: []Repository{{URL: url, AllowUnsigned: true}}}
			if err := r.validate(); err != nil {
				t.Fatal(err)
			}
			cache := &fetch.Cache{Dir: cacheDir, Quiet: true}
			_, err := LoadRepositories(context.Background(), cache, r)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), url) {
				t.Fatalf("got %v, want an error naming the repository and %q", err, c.want)
			}
			canary.Check(t)
		})
	}
	t.Run("cache refuses the digest by itself", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("evil")) }))
		defer srv.Close()
		cache := &fetch.Cache{Dir: cacheDir, Quiet: true, Attempts: 1}
		if _, err := cache.File(context.Background(), srv.URL+"/x\nsecond line", hostile); err == nil || !strings.Contains(err.Error(), "not 64 hex digits") {
			t.Fatalf("got %v", err)
		}
		canary.Check(t)
		if _, err := os.Stat(filepath.Join(cacheDir, "locks")); err == nil {
			entries, _ := os.ReadDir(filepath.Join(cacheDir, "locks"))
			if len(entries) > 0 {
				t.Errorf("a lock file was made for a refused digest: %v", entries)
			}
		}
	})
}

// readIndexDict reads index.plist of a repodata file as a plain dictionary, for tests to change.
func readIndexDict(t *testing.T, repodata string) map[string]any {
	t.Helper()
	f, err := os.Open(repodata)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dr, _, closer, err := xbps.Decompress(f)
	if err != nil {
		t.Fatal(err)
	}
	defer closer()
	tr := tar.NewReader(dr)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("no index.plist in %s: %v", repodata, err)
		}
		if hdr.Name == "index.plist" {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			var d map[string]any
			if _, err := plist.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
}
