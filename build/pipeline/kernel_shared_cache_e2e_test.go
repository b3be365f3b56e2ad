package pipeline

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/kernel"
)

// startRedis starts a Redis server of the test's on a loopback port, keeping nothing on disk.
func startRedis(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (.ci/run installs Debian's redis-server)")
	}
	port := freeLocalPort(t)
	cmd := exec.Command("redis-server", "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--protected-mode", "yes")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "redis://" + addr
		}
	}
	t.Fatalf("redis-server on %s did not start", addr)
	return ""
}

// TestCCacheRemoteEndToEnd shares ccache's objects through a Redis server, as machines of a CI
// would: a first build fills it; a second one, with an empty local ccache and no build folder (a
// new machine laid out as the first), compiles from its hits. Both kernels are the local build's
// bytes, and the build record counts the hits.
func TestCCacheRemoteEndToEnd(t *testing.T) {
	requireE2E(t)
	if _, err := exec.LookPath("ccache"); err != nil {
		t.Fatal("ccache is not installed (.ci/run installs it)")
	}
	local := e2eKernel(t)
	want, err := digest.File(local)
	if err != nil {
		t.Fatal(err)
	}
	remote := startRedis(t)
	m, version := debianMirror(t)
	work := t.TempDir()
	for i, machine := range []string{"first", "second"} {
		t.Setenv("CCACHE_DIR", filepath.Join(work, "ccache-"+machine)) // each machine's own, empty
		os.RemoveAll(filepath.Join(work, "cache", "build"))
		cfg := m.testConfig(t, version, withSettings(e2eKernelSettings(), map[string]string{"SUML_KERNEL_CC_WRAPPER": "ccache", "SUML_KERNEL_CCACHE_REMOTE": remote,
			"SUML_CACHE": filepath.Join(work, "cache"), "SUML_DIST": filepath.Join(work, "dist-"+machine)}))
		start := time.Now()
		res, err := Kernel(context.Background(), cfg, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		stats := res.Record.CCache
		if stats == nil {
			t.Fatalf("%s machine: the build record has no ccache counts", machine)
		}
		rate := float64(stats.Hits) / float64(max(1, stats.Hits+stats.Misses))
		t.Logf("%s machine: %s; ccache %d hits (%d remote), %d misses: %.1f%%", machine, time.Since(start).Round(time.Second),
			stats.Hits, stats.RemoteHits, stats.Misses, 100*rate)
		if i == 0 && (rate > 0.10 || stats.Misses < 500) {
			t.Errorf("the first build, from empty caches: %d hits, %d misses", stats.Hits, stats.Misses)
		}
		if i == 1 && (rate < 0.95 || stats.RemoteHits < stats.Hits*95/100) {
			t.Errorf("the second machine's hits: %.1f%%, %d of %d from the remote storage; want above 95%%", 100*rate, stats.RemoteHits, stats.Hits)
		}
		if got, _ := digest.File(filepath.Join(cfg.Paths.Dist, kernel.LinuxName)); got != want {
			t.Errorf("%s machine's kernel %s differs from the local build's %s", machine, got, want)
		}
	}
}
