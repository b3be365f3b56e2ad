package pipeline

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/manifest"
)

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

// TestBootSaysWhatIsOpen: the default configuration opens no door to the host, and a boot's banner
// says which doors are open.
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
	// The banner of a boot with the defaults: the doors themselves are uml's TestDescribeDoors.
	var out strings.Builder
	describeBoot(&out, &guest{kernel: &manifest.KernelRecord{Version: "6.12.117"}, rootfs: &manifest.RootfsRecord{}, throwaway: &files.PrivateDir{}})
	for _, w := range []string{"throwaway copy-on-write", "network: none", "host files: none shared", "sandbox: "} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("banner lacks %q:\n%s", w, out.String())
		}
	}
}
