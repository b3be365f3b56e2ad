package releasedir

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// standInKernel writes the kernel stage's outputs in dist as small stand-in files, with a record
// that describes them.
func standInKernel(t *testing.T, dist string, rec manifest.KernelRecord) {
	t.Helper()
	rec.Outputs = map[string]string{}
	for _, o := range kernel.Outputs {
		p := filepath.Join(dist, o.Name)
		if err := os.WriteFile(p, []byte("stand-in "+o.Name+"\n"), o.Mode); err != nil {
			t.Fatal(err)
		}
		rec.Outputs[o.Name], _ = digest.File(p)
	}
	if err := files.WriteJSON(filepath.Join(dist, manifest.KernelRecordName), rec); err != nil {
		t.Fatal(err)
	}
}

// standInRootfs writes a recipe's image, tarball and record in dist as the rootfs stage leaves them.
func standInRootfs(t *testing.T, dist, recipe string) {
	t.Helper()
	image, tarball, record := manifest.RootfsFiles(dist, recipe)
	rec := manifest.RootfsRecord{Recipe: recipe, Arch: "x86_64", Outputs: map[string]manifest.Output{},
		Packages: []manifest.PackageRecord{{Name: "busybox", Pkgver: "busybox-1.36_1", Version: "1.36_1", Arch: "x86_64"}}}
	for _, p := range []string{image, tarball} {
		if err := os.WriteFile(p, []byte("stand-in "+filepath.Base(p)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		o, err := manifest.Describe(p)
		if err != nil {
			t.Fatal(err)
		}
		rec.Outputs[filepath.Base(p)] = o
	}
	if err := files.WriteJSON(record, rec); err != nil {
		t.Fatal(err)
	}
}

var standInKernelRecord = manifest.KernelRecord{Version: "6.12.117", Subarch: "x86_64", Compiler: "gcc 12",
	BuildEnv: []string{"KBUILD_BUILD_TIMESTAMP=Sat, 14 Nov 2026 12:56:01 +0000"}}

// standInDist is a dist/ with a stand-in kernel and the root filesystem "test", ready for a release.
func standInDist(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Config{Paths: config.Paths{Dist: t.TempDir()}, Release: config.Release{Revision: 1}}
	standInKernel(t, cfg.Paths.Dist, standInKernelRecord)
	standInRootfs(t, cfg.Paths.Dist, "test")
	return cfg
}

// written is what one writing of the release did.
type written struct {
	files    []string
	upToDate bool
}

// write writes the release as mage dist does: a plan, nothing more when dist/release holds it, else
// each step in order into a staged folder that then replaces dist/release.
func write(cfg config.Config) (written, error) {
	b, err := Plan(cfg)
	if err != nil {
		return written{}, err
	}
	if names, ok := b.Current(); ok {
		return written{files: names, upToDate: true}, nil
	}
	if err := b.Open(); err != nil {
		return written{}, err
	}
	defer b.Close()
	for _, s := range b.Steps() {
		if err := s.Run(context.Background()); err != nil {
			return written{}, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	names, err := b.Replace()
	return written{files: names}, err
}

// TestNewReleaseAssetIsWritten: the release's layout is in its key, so a dist with one more part
// writes the release again, with the new asset in the manifest and SHA256SUMS, where an up-to-date
// check on the inputs alone would say "nothing to do"; and a release written before the layout had a
// format version is written again too.
func TestNewReleaseAssetIsWritten(t *testing.T) {
	cfg := standInDist(t)
	dir := filepath.Join(cfg.Paths.Dist, Name)
	if _, err := write(cfg); err != nil {
		t.Fatal(err)
	}

	saved := layout
	t.Cleanup(func() { layout = saved })
	layout = append(append([]Part{}, saved...), Part{
		Name:   "provenance",
		Assets: func(*Build) []string { return []string{"provenance.txt"} },
		Write: func(b *Build, _ context.Context) error {
			return os.WriteFile(filepath.Join(b.stage, "provenance.txt"), []byte(b.Manifest.Tag+"\n"), 0o644)
		},
	})
	next, err := write(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if next.upToDate || !slices.Contains(next.files, "provenance.txt") {
		t.Fatalf("with a new part: up to date %v, files %v", next.upToDate, next.files)
	}
	m, err := manifest.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Assets["provenance.txt"] == "" || m.Format != Format {
		t.Errorf("manifest: format %d, assets %v", m.Format, m.Assets)
	}
	if again, err := write(cfg); err != nil || !again.upToDate {
		t.Errorf("the rerun: up to date %v, %v", again.upToDate, err)
	}

	// A part that names an asset it does not write fails the run, naming it, and dist/release stays.
	layout = append(layout, Part{
		Name:   "forgetful",
		Assets: func(*Build) []string { return []string{"never-written.txt"} },
		Write:  func(*Build, context.Context) error { return nil },
	})
	if _, err := write(cfg); err == nil || !strings.Contains(err.Error(), "never-written.txt") {
		t.Errorf("a planned asset not written: %v", err)
	}
	if _, err := manifest.Verify(dir); err != nil {
		t.Errorf("after a failed run: %v", err)
	}
	if stages, _ := filepath.Glob(filepath.Join(cfg.Paths.Dist, StagePrefix+"*")); len(stages) > 0 {
		t.Errorf("the failed run left its staging folder: %v", stages)
	}

	// A manifest of the layout before format versions (no "format") is not up to date.
	layout = saved
	if _, err := write(cfg); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, manifest.ManifestName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := bytes.Replace(data, []byte(fmt.Sprintf(`"format": %d,`, Format)), nil, 1)
	os.WriteFile(path, old, 0o644)
	if again, err := write(cfg); err != nil || again.upToDate {
		t.Errorf("over a manifest without a format: up to date %v, %v", again.upToDate, err)
	}
}

// TestPlanRefuses: a dist/ a release cannot be made of is refused before anything is written, with
// the target that makes it right.
func TestPlanRefuses(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "") // the kernel's build time is the release's
	tree := standInKernelRecord
	tree.Tree = &manifest.Tree{Path: "/home/me/linux"}
	tests := []struct {
		name  string
		setup func(t *testing.T, dist string)
		want  string
	}{
		{"no kernel", func(t *testing.T, dist string) { standInRootfs(t, dist, "test") }, "no kernel in"},
		{"a changed kernel", func(t *testing.T, dist string) {
			standInKernel(t, dist, standInKernelRecord)
			standInRootfs(t, dist, "test")
			os.WriteFile(filepath.Join(dist, kernel.LinuxName), []byte("changed\n"), 0o755)
		}, "rerun `go tool mage kernel`"},
		{"a kernel from a tree", func(t *testing.T, dist string) {
			standInKernel(t, dist, tree)
			standInRootfs(t, dist, "test")
		}, "unset kernel.tree"},
		{"no root filesystem", func(t *testing.T, dist string) { standInKernel(t, dist, standInKernelRecord) }, "run `go tool mage rootfs` first"},
		{"no build time", func(t *testing.T, dist string) {
			standInKernel(t, dist, manifest.KernelRecord{Version: "6.12.117", Subarch: "x86_64"})
			standInRootfs(t, dist, "test")
		}, "set SOURCE_DATE_EPOCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Config{Paths: config.Paths{Dist: t.TempDir()}, Release: config.Release{Revision: 1}}
			tt.setup(t, cfg.Paths.Dist)
			if _, err := Plan(cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
			if entries, _ := os.ReadDir(cfg.Paths.Dist); slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == Name }) {
				t.Errorf("%s was written", Name)
			}
		})
	}
}

// TestPlanNamesEveryAsset: the plan names the assets of every part, in the layout's order, with the
// tag's version in them, before anything is written.
func TestPlanNamesEveryAsset(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "")
	cfg := standInDist(t)
	standInRootfs(t, cfg.Paths.Dist, "other")
	b, err := Plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"simple-uml-linux-6.12.117-1-um-x86_64.tar.xz",
		"simple-uml-rootfs-other-x86_64-6.12.117-1.ext4.zst", "simple-uml-rootfs-other-x86_64-6.12.117-1.tar.zst",
		"simple-uml-rootfs-test-x86_64-6.12.117-1.ext4.zst", "simple-uml-rootfs-test-x86_64-6.12.117-1.tar.zst",
		"simple-uml-6.12.117-1.cdx.json", manifest.NotesName}
	if !slices.Equal(b.assets, want) {
		t.Errorf("assets %v, want %v", b.assets, want)
	}
	for _, name := range want {
		if d, ok := b.Manifest.Assets[name]; !ok || d != "" {
			t.Errorf("manifest asset %s: %q, %v", name, d, ok)
		}
	}
	for _, root := range b.Manifest.Rootfs {
		for name, o := range root.Outputs {
			if o.MtimeNS != 0 {
				t.Errorf("%s's output %s carries its mtime into the manifest", root.Recipe, name)
			}
		}
	}
	if b.Manifest.Tag != "v6.12.117-1" || b.Manifest.Format != Format || b.Epoch.Unix() != 1794660961 {
		t.Errorf("tag %s, format %d, epoch %d", b.Manifest.Tag, b.Manifest.Format, b.Epoch.Unix())
	}
}
