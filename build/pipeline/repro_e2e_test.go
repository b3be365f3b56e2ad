package pipeline

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/simple-uml/simple-uml/build/kernel"
)

// TestReproEndToEnd runs the whole pipeline twice (kernel from the loopback kernel.org, the busybox
// test system with its INSTALL scripts run in a configure boot, dist) in different cache and dist
// folders, a while apart, with another umask and time zone the second time, and wants byte-identical
// releases. Only verified downloads are shared.
func TestReproEndToEnd(t *testing.T) {
	requireE2E(t)
	m, version := debianMirror(t)
	repo := newXbpsRepo(t, busyboxPackages(t, true))
	recipes := t.TempDir()
	writeRecipe(t, recipes, repo, "", map[string]string{"etc/motd": "reproducible\n"})
	cfg := m.testConfig(t, version, map[string]string{"SUML_RECIPES": recipes, "SUML_ROOTFS_RECIPE": "test"})
	work := t.TempDir()

	res, err := Repro(context.Background(), cfg, ReproOptions{Work: work, Between: func() {
		old := syscall.Umask(0o077)
		t.Cleanup(func() { syscall.Umask(old) })
		t.Setenv("TZ", "Pacific/Kiritimati")
	}}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if res.Diff != nil {
		t.Fatalf("the two releases differ: %s\n%s", res.Diff, res.Diffoscope)
	}
	if res.Files < 7 {
		t.Errorf("compared %d files, want the kernel tarball, image, rootfs tarball, SBOM, notes, manifest and SHA256SUMS", res.Files)
	}
	// Two real builds: each run has its own source tree and build folder; downloads came once.
	for _, run := range []string{"first", "second"} {
		builds, _ := filepath.Glob(filepath.Join(work, run, "cache", "build", "*"))
		if len(builds) != 1 {
			t.Errorf("%s run: build folders %v, want its own one", run, builds)
		}
	}
	if n := m.hitCount("/pub/linux/kernel/v6.x/linux-" + version + ".tar.xz"); n != 1 {
		t.Errorf("the tarball was downloaded %d times, want once (the download cache is shared)", n)
	}
	if !strings.HasPrefix(res.Releases[0], work) || res.Releases[0] == res.Releases[1] {
		t.Errorf("releases %v", res.Releases)
	}
	// The default profile's kernel has debug information, which names no cache folder: gdb, told
	// where the source is as `mage debug` tells it, lists start_kernel.
	first := filepath.Join(work, "first")
	checkGdb(t, filepath.Join(first, "dist", kernel.DebugName), filepath.Join(first, "cache"), "list start_kernel", "start_kernel(void)")
}
