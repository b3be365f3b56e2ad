package pipeline

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/xbps"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

// BenchmarkRootfs times resolve + fetch + verify + unpack + image + tarball for the busybox test
// repository and for the largest real fixture set (every package file of Encoded14's x86_64
// repository, with an unsigned stand-in for what it needs from Void's main repository), from an
// empty cache, one download at a time and four at a time. Every HTTP answer waits benchLatency, as
// from a distant mirror. Peak memory: run under /usr/bin/time -v (scripts/bench-rootfs.sh).
func BenchmarkRootfs(b *testing.B) {
	requireImageTools(b)
	sets := map[string]func(b *testing.B) (recipes string){
		"busybox": func(b *testing.B) string {
			return recipeDir(b, newSlowXbpsRepo(b, busyboxPackages(b, false), benchLatency), "", nil)
		},
		"encoded14": encoded14Recipe,
	}
	for _, set := range []string{"busybox", "encoded14"} {
		recipes := sets[set](b)
		for _, n := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/downloads=%d", set, n), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					cfg := rootfsConfig(b, recipes, map[string]string{"SUML_ROOTFS_DOWNLOADS": strconv.Itoa(n)})
					if _, err := Rootfs(context.Background(), cfg, "", testLog(b)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// encoded14Recipe serves the real Encoded14 x86_64 repository over loopback, with a second, unsigned
// repository standing in for the Void packages and shared libraries it depends on.
const benchLatency = 50 * time.Millisecond

func encoded14Recipe(b *testing.B) string {
	dir := filepath.Join(repoRoot(b), "..", "shared", "fixtures", "xbps", "Encoded14-void-user-repository", "x86_64")
	f, err := os.Open(filepath.Join(dir, "x86_64-repodata"))
	if err != nil {
		b.Fatal(err)
	}
	rd, err := xbps.ReadRepodata(f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	missing := map[string]bool{}
	var shlibs []string
	for _, n := range xbps.Names(rd.Index) {
		p := rd.Index[n]
		if _, err := os.Stat(filepath.Join(dir, p.Pkgver+".x86_64.xbps")); err != nil {
			continue // index-only entry
		}
		if n == "hyprsysteminfo" {
			continue // its INSTALL script would need a configure boot with Void's real base system
		}
		names = append(names, fmt.Sprintf("%q", n))
	}
	for _, p := range rd.Index {
		for _, d := range p.RunDepends {
			dp, _ := xbps.ParsePattern(d)
			if _, ok := rd.Index[dp.Name]; !ok {
				missing[dp.Name] = true
			}
		}
		shlibs = append(shlibs, p.ShlibRequires...)
	}
	var stand []xbpstest.Package
	for n := range missing {
		stand = append(stand, xbpstest.Package{Pkgver: n + "-9999_1"})
	}
	stand = append(stand, xbpstest.Package{Pkgver: "stand-in-shlibs-1_1", ShlibProvides: shlibs})
	standDir := b.TempDir()
	if err := (xbpstest.Repo{Dir: standDir}).Write(stand); err != nil {
		b.Fatal(err)
	}
	real := httptest.NewServer(slowFiles(dir, benchLatency))
	b.Cleanup(real.Close)
	recipes := b.TempDir()
	recipe := fmt.Sprintf(`arch = "x86_64"
packages = [%s, "stand-in-shlibs"]
image_size = "256M"

[[repositories]]
url = %q
keys = ["1d:c2:cf:d4:08:97:4c:47:5d:88:4c:fd:e9:a5:d0:9a"]

[[repositories]]
url = %q
allow_unsigned = true
`, strings.Join(names, ", "), real.URL, standDir)
	if err := os.WriteFile(filepath.Join(recipes, "test.toml"), []byte(recipe), 0o644); err != nil {
		b.Fatal(err)
	}
	return recipes
}

// BenchmarkNoopRerun times a rerun of rootfs and of dist on unchanged inputs (the encoded14 set:
// 12 real packages, 256 MiB image; a stand-in kernel in dist), inside the pipeline. The whole
// command adds mage's start-up (see docs/benchmarks.md).
func BenchmarkNoopRerun(b *testing.B) {
	requireImageTools(b)
	cfg := rootfsConfig(b, encoded14Recipe(b), nil)
	ctx := context.Background()
	if _, err := Rootfs(ctx, cfg, "", testLog(b)); err != nil {
		b.Fatal(err)
	}
	fakeKernelDist(b, cfg.Paths.Dist)
	if _, err := Dist(ctx, cfg, testLog(b)); err != nil {
		b.Fatal(err)
	}
	b.Run("rootfs", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if res, err := Rootfs(ctx, cfg, "", testLog(b)); err != nil || !res.UpToDate {
				b.Fatalf("not a no-op: %v", err)
			}
		}
	})
	b.Run("dist", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if res, err := Dist(ctx, cfg, testLog(b)); err != nil || !res.UpToDate {
				b.Fatalf("not a no-op: %v", err)
			}
		}
	})
}
