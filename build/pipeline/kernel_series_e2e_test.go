package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/releasedir"
)

// Debian's linux-source-6.1: the older longterm series a maintainer keeps beside 6.12.
const debianOlderTarball = "/usr/src/linux-source-6.1.tar.xz"

// hostfsScript checks, in the guest, that the kernel carries its series' hostfs patch: without
// hostfs=<dir> a hostfs mount is refused by the patch, which says so.
const hostfsScript = `#!/bin/sh
echo "TAP version 13"
echo "1..1"
mkdir -p /mnt/host
if mount -t hostfs none /mnt/host 2>/dev/null; then
  echo "not ok 1 - hostfs mounted the host's files"
elif dmesg | grep -q "hostfs: no host folder is shared"; then
  echo "ok 1 - hostfs refused by the patched kernel"
else
  echo "not ok 1 - hostfs refused, but not by the patch"
fi
`

// TestSeriesEndToEnd keeps two series side by side as a maintainer does: Debian's linux-source-6.12
// as the default series and linux-source-6.1 pinned beside it in kernel.lock, both served by the
// loopback kernel.org. Each goes through kernel, dist and a dry-run release; their folders, records,
// tags and assets do not mix, and the 6.1 kernel, patched from patches/6.1/, passes mage test with
// dist/'s image.
func TestSeriesEndToEnd(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	if _, err := os.Stat(debianOlderTarball); err != nil {
		t.Fatalf("%s: %v (apt-get install linux-source-6.1)", debianOlderTarball, err)
	}
	ws, _, _ := e2ePair(t)
	newer, older := tarballVersion(t, debianTarball), tarballVersion(t, debianOlderTarball)
	m := newMirror(t)
	olderData, err := os.ReadFile(debianOlderTarball)
	if err != nil {
		t.Fatal(err)
	}
	newerData, err := os.ReadFile(debianTarball)
	if err != nil {
		t.Fatal(err)
	}
	// Both releases live in v6.x/, under one signed sha256sums.asc.
	olderSum := sha256.Sum256(olderData)
	m.put("/pub/linux/kernel/v6.x/linux-"+older+".tar.xz", olderData)
	m.publish(t, newer, newerData, m.signer, map[string]string{"linux-" + older + ".tar.xz": hex.EncodeToString(olderSum[:])})

	// dist/ as the maintainer has it: the default series' kernel (the shared one, built with these
	// settings) and the test system's image.
	work := t.TempDir()
	dist := filepath.Join(work, "dist")
	copyKernel(t, filepath.Join(ws, "dist"), dist)
	for _, p := range rootfsFiles(filepath.Join(ws, "dist"), "test") {
		if err := files.LinkOrCopy(p, filepath.Join(dist, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(work, "hostfs.sh")
	os.WriteFile(script, []byte(hostfsScript), 0o644)
	cfg := bootConfig(t, ws, withSettings(e2eKernelSettings(), map[string]string{
		"SUML_KERNEL_MIRROR": m.URL + "/pub/linux/kernel", "SUML_KERNEL_KEYS": m.URL + "/keys/autosigner.asc",
		"SUML_KERNEL_TRUSTED_KEYS": m.fingerprint(), "SUML_KERNEL_VERSION": newer,
		"SUML_DIST": dist, "SUML_CACHE": filepath.Join(work, "cache"), "SUML_TEST_SCRIPTS": script,
	}))
	cfg.OtherPins = map[string]config.KernelPin{"6.1": {Version: older}} // kernel.lock's [series."6.1"]
	all, err := cfg.Select(config.AllSeries)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[1].Paths.Dist != filepath.Join(dist, "6.1") || all[1].Paths.Patches != filepath.Join(repoRoot(t), "patches", "6.1") {
		t.Fatalf("series: %d, the second's dist %s and patches %s", len(all), all[1].Paths.Dist, all[1].Paths.Patches)
	}
	ctx := context.Background()

	// kernel: the default series is the shared kernel, up to date; 6.1 builds into dist/6.1/.
	var records []manifest.KernelRecord
	for i, c := range all {
		res, err := Kernel(ctx, c, testLog(t))
		if err != nil {
			t.Fatalf("series %s: %v", c.Kernel.Series, err)
		}
		if i == 0 && !res.UpToDate {
			t.Errorf("the default series was rebuilt; want the shared kernel found up to date")
		}
		records = append(records, res.Record)
	}
	if !strings.HasPrefix(records[0].Version, newer) || records[1].Version != older || records[1].TarballSHA256 != hex.EncodeToString(olderSum[:]) {
		t.Errorf("records: %s and %s (tarball %s)", records[0].Version, records[1].Version, records[1].TarballSHA256)
	}
	if slices.ContainsFunc(records[1].Patches, func(d manifest.Digest) bool { return !strings.Contains(d.File, "/6.1/") }) {
		t.Errorf("6.1's patches are not patches/6.1/'s: %+v", records[1].Patches)
	}
	if dflt, err := manifest.ReadKernelRecord(dist); err != nil || dflt.Version != records[0].Version {
		t.Errorf("dist/'s kernel record after building 6.1: %v, %v", dflt, err)
	}

	// mage test -series=6.1: the 6.1 kernel boots dist/'s image, passes the checks, and carries the
	// backported hostfs patch.
	report, err := GuestTest(ctx, all[1], testLog(t))
	if err != nil {
		t.Fatalf("mage test -series=6.1: %v", err)
	}
	if report.Version != older || len(report.Scripts) != 1 {
		t.Errorf("mage test -series=6.1 booted %s, scripts %d", report.Version, len(report.Scripts))
	}

	// dist and a dry-run release of each: one release per series, nothing shared but the images.
	gh := githubWithoutReleases(t, nil)
	env := map[string]string{"GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": gh.URL + "/api/v3", "GITHUB_SHA": strings.Repeat("ab", 20)}
	var tags []string
	assets := map[string]string{} // asset -> series
	for i, c := range all {
		res, err := Dist(ctx, c, testLog(t))
		if err != nil {
			t.Fatalf("dist, series %s: %v", c.Kernel.Series, err)
		}
		if res.Dir != filepath.Join(c.Paths.Dist, releasedir.Name) || !strings.HasPrefix(res.Tag, "v"+records[i].Version+"-") {
			t.Errorf("series %s: release %s in %s", c.Kernel.Series, res.Tag, res.Dir)
		}
		for _, a := range res.Assets {
			if a == manifest.ManifestName || a == artifact.SumsName || a == manifest.NotesName {
				continue // each release's own, by a fixed name
			}
			if prev, ok := assets[a]; ok {
				t.Errorf("asset %s is in the releases of %s and %s", a, prev, c.Kernel.Series)
			}
			assets[a] = c.Kernel.Series
		}
		var out bytes.Buffer
		plan, err := Publish(ctx, c, func(k string) string { return env[k] }, PublishOptions{DryRun: true}, &out)
		if err != nil {
			t.Fatalf("release -dryRun, series %s: %v", c.Kernel.Series, err)
		}
		wantLatest := "latest: " + map[bool]string{true: "true", false: "false"}[i == 0]
		if plan.Tag != res.Tag || plan.Writes != 0 || !strings.Contains(out.String(), wantLatest) {
			t.Errorf("series %s: plan for %s (dist made %s), %d writes; want %q in:\n%s", c.Kernel.Series, plan.Tag, res.Tag, plan.Writes, wantLatest, out.String())
		}
		tags = append(tags, plan.Tag)
	}
	if tags[0] == tags[1] {
		t.Errorf("both series released as %s", tags[0])
	}
}

// rootfsFiles are a recipe's image, tarball and record in a dist folder.
func rootfsFiles(dist, recipe string) []string {
	image, tarball, record := manifest.RootfsFiles(dist, recipe)
	return []string{image, tarball, record}
}
