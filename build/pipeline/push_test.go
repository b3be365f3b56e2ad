package pipeline

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/ociimage"
	"github.com/simple-uml/simple-uml/build/ociimage/registrytest"
)

// TestPush: mage push sends boot.recipe's image to release.registry under the repository's name and
// dist/release's tag, and it comes back by the digest it printed; an image of another kernel, or
// none, is refused saying how to write it.
func TestPush(t *testing.T) {
	addr, _ := registrytest.Start(t)
	cfg := distReady(t)
	ctx := context.Background()
	if _, err := Dist(ctx, cfg, testLog(t)); err != nil {
		t.Fatal(err)
	}
	cfg.Release.Registry = addr
	env := map[string]string{"GITHUB_REPOSITORY": "Owner/Repo"}
	getenv := func(k string) string { return env[k] }
	archive := filepath.Join(cfg.ImagesDir(), cfg.Boot.Recipe+".oci.tar")
	if _, err := Push(ctx, cfg, getenv, testLog(t)); err == nil || !strings.Contains(err.Error(), "go tool mage image") {
		t.Errorf("no image: %v", err)
	}
	writeImage := func(version string) {
		image := filepath.Join(t.TempDir(), "image.ext4")
		os.WriteFile(image, []byte("an image"), 0o644)
		in := ociimage.Input{Entrypoint: "/bin/true", Kernel: "/bin/true", Image: image, Version: version, Epoch: time.Unix(0, 0),
			Spec: instance.Spec{Name: cfg.Boot.Recipe, Recipe: cfg.Boot.Recipe}}
		if _, err := ociimage.Write(ctx, in, archive); err != nil {
			t.Fatal(err)
		}
	}
	writeImage("6.1.1")
	if _, err := Push(ctx, cfg, getenv, testLog(t)); err == nil || !strings.Contains(err.Error(), "holds kernel 6.1.1, the release v6.12.117-1 kernel 6.12.117") {
		t.Errorf("an image of another kernel: %v", err)
	}
	writeImage("6.12.117")
	var out bytes.Buffer
	ref, err := Push(ctx, cfg, getenv, &out)
	if err != nil {
		t.Fatal(err)
	}
	if want := addr + "/owner/repo/" + cfg.Boot.Recipe + "@sha256:"; !strings.HasPrefix(ref, want) || !strings.Contains(out.String(), ":v6.12.117-1") {
		t.Errorf("pushed %s, want %s...; said %q", ref, want, out.String())
	}
	pushed, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(archive)
	os.RemoveAll(ociimage.LayoutDir(archive))
	out.Reset()
	if got, err := Pull(ctx, cfg, ref, getenv, &out); err != nil || got != archive || !strings.Contains(out.String(), "of kernel 6.12.117") {
		t.Fatalf("pull of the pushed image by its digest: %s %v\n%s", got, err, out.String())
	}
	if pulled, _ := os.ReadFile(archive); !bytes.Equal(pulled, pushed) {
		t.Error("the pulled archive is not the pushed one")
	}
	for _, bad := range []string{strings.Replace(ref, "@sha256:", ":", 1) + "x", addr + "/owner/repo/" + cfg.Boot.Recipe + ":v6.12.117-1"} {
		if _, err := Pull(ctx, cfg, bad, getenv, &out); err == nil || !strings.Contains(err.Error(), "by digest") {
			t.Errorf("pull of %s: %v, want a digest asked for", bad, err)
		}
	}
}

// TestPullSendsTheTokenToTheReleaseRegistryOnly: GITHUB_TOKEN goes with a pull from
// release.registry, never to a registry a reference names otherwise.
func TestPullSendsTheTokenToTheReleaseRegistryOnly(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	registry := strings.TrimPrefix(srv.URL, "http://")
	cfg := distReady(t)
	getenv := func(k string) string { return map[string]string{"GITHUB_TOKEN": "the-token"}[k] }
	ref := registry + "/owner/repo/test@sha256:" + strings.Repeat("a", 64)
	for _, tt := range []struct {
		releaseRegistry string
		wantToken       bool
	}{{"ghcr.io", false}, {registry, true}} {
		mu.Lock()
		seen = nil
		mu.Unlock()
		cfg.Release.Registry = tt.releaseRegistry
		if _, err := Pull(context.Background(), cfg, ref, getenv, testLog(t)); err == nil {
			t.Fatal("a pull from a registry that refuses everyone succeeded")
		}
		mu.Lock()
		sent := strings.Contains(strings.Join(seen, " "), "Basic")
		mu.Unlock()
		if sent != tt.wantToken {
			t.Errorf("release.registry %s: the token sent: %v, want %v (headers %q)", tt.releaseRegistry, sent, tt.wantToken, seen)
		}
	}
}
