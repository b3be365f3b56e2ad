package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// ReleaseDir is the folder in dist/ that mage dist writes the release to.
const ReleaseDir = "release"

// DistResult says what Dist wrote.
type DistResult struct {
	Dir      string
	Tag      string
	Assets   []string
	UpToDate bool // dist/release already held this release: nothing was written
}

// Dist turns dist/'s kernel and root filesystems into release assets in dist/release/: the kernel
// tarball, each recipe's compressed image and tarball, manifest.json and SHA256SUMS. The folder is
// replaced as a whole, so it is either the old release or the new one.
func Dist(ctx context.Context, cfg config.Config, w io.Writer) (DistResult, error) {
	start := time.Now()
	unlock, err := startRun(ctx, cfg, "mage dist", w)
	if err != nil {
		return DistResult{}, err
	}
	defer unlock()
	kernel, err := manifest.ReadKernelRecord(cfg.Paths.Dist)
	if err != nil {
		return DistResult{}, fmt.Errorf("no kernel in %s (run `go tool mage kernel`): %w", cfg.Paths.Dist, err)
	}
	if err := kernel.CheckOutputs(cfg.Paths.Dist); err != nil {
		return DistResult{}, fmt.Errorf("dist/ does not hold the kernel its record describes (rerun `go tool mage kernel`): %w", err)
	}
	roots, err := distRootfs(cfg.Paths.Dist)
	if err != nil {
		return DistResult{}, err
	}
	if len(roots) == 0 {
		return DistResult{}, fmt.Errorf("no root filesystem in %s: run `go tool mage rootfs` first", cfg.Paths.Dist)
	}
	epoch, err := releaseEpoch(kernel)
	if err != nil {
		return DistResult{}, err
	}
	m := manifest.Manifest{Tag: manifest.Tag(kernel.Version, cfg.Release.Revision), Revision: cfg.Release.Revision, SourceDateEpoch: epoch.Unix(),
		Kernel: *kernel, Assets: map[string]string{}}
	for _, r := range roots {
		// The manifest describes outputs by content; when dist's copy was written is not part of it.
		outputs := map[string]manifest.Output{}
		for name, o := range r.Outputs {
			o.MtimeNS = 0
			outputs[name] = o
		}
		r.Outputs = outputs
		m.Rootfs = append(m.Rootfs, r)
	}
	dir := filepath.Join(cfg.Paths.Dist, ReleaseDir)
	if assets, ok := manifest.Current(dir, m); ok && cfg.Release.Previous == "" {
		fmt.Fprintf(w, "release %s is up to date in %s (same kernel, root filesystems and revision); nothing to do (%s)\n",
			m.Tag, dir, time.Since(start).Round(time.Millisecond))
		return DistResult{Dir: dir, Tag: m.Tag, Assets: assets, UpToDate: true}, nil
	}
	stage, err := os.MkdirTemp(cfg.Paths.Dist, ".release.tmp-")
	if err != nil {
		return DistResult{}, err
	}
	defer os.RemoveAll(stage)
	os.Chmod(stage, 0o755)
	fmt.Fprintf(w, "dist: release %s (SOURCE_DATE_EPOCH=%d)\n", m.Tag, epoch.Unix())

	version := strings.TrimPrefix(m.Tag, "v")
	kernelTar := manifest.KernelAsset(version, kernel.Subarch)
	entries := []artifact.Entry{
		{Name: "linux", Source: filepath.Join(cfg.Paths.Dist, LinuxName), Mode: 0o755},
		{Name: ".config", Source: filepath.Join(cfg.Paths.Dist, ConfigName), Mode: 0o644},
		{Name: "System.map", Source: filepath.Join(cfg.Paths.Dist, SystemMapName), Mode: 0o644},
		{Name: "COPYING", Source: filepath.Join(cfg.Paths.Dist, LicenseName), Mode: 0o644},
	}
	if err := artifact.WriteFile(filepath.Join(stage, kernelTar), artifact.Xz, func(out io.Writer) error {
		return artifact.WriteTar(out, entries, epoch)
	}); err != nil {
		return DistResult{}, fmt.Errorf("kernel tarball: %w", err)
	}
	assets := []string{kernelTar}
	for _, r := range roots {
		if err := ctx.Err(); err != nil {
			return DistResult{}, err
		}
		image, tarball, _ := RootfsOutputs(cfg.Paths.Dist, r.Recipe)
		base := manifest.RootfsAssetBase(r.Recipe, r.Arch, version)
		if err := artifact.WriteFile(filepath.Join(stage, base+".ext4.zst"), artifact.Zstd, func(out io.Writer) error {
			return copyFrom(out, image)
		}); err != nil {
			return DistResult{}, fmt.Errorf("rootfs %s image: %w", r.Recipe, err)
		}
		// The tarball is already a reproducible .tar.zst: it is shipped as it is.
		if err := files.LinkOrCopy(tarball, filepath.Join(stage, base+".tar.zst")); err != nil {
			return DistResult{}, err
		}
		assets = append(assets, base+".ext4.zst", base+".tar.zst")
	}
	sbomName := manifest.SBOMAsset(version)
	if err := writeSBOM(filepath.Join(stage, sbomName), m, version, epoch); err != nil {
		return DistResult{}, err
	}
	assets = append(assets, sbomName)
	// The notes compare with the previous release: SUML_RELEASE_PREVIOUS, or the release dist/ held
	// before when it was another tag.
	prevPath := cfg.Release.Previous
	if prevPath == "" {
		prevPath = filepath.Join(cfg.Paths.Dist, ReleaseDir, manifest.ManifestName)
	}
	prev, err := manifest.Read(prevPath)
	if err != nil {
		return DistResult{}, fmt.Errorf("previous release: %w", err)
	}
	if prev != nil && prev.Tag == m.Tag && cfg.Release.Previous == "" {
		prev = nil
	}
	if err := os.WriteFile(filepath.Join(stage, manifest.NotesName), []byte(manifest.Notes(m, prev)), 0o644); err != nil {
		return DistResult{}, err
	}
	assets = append(assets, manifest.NotesName)
	sums := artifact.Sums{}
	if err := sums.Hash(stage, assets...); err != nil {
		return DistResult{}, err
	}
	for n, s := range sums {
		m.Assets[n] = s
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return DistResult{}, err
	}
	if err := os.WriteFile(filepath.Join(stage, manifest.ManifestName), append(data, '\n'), 0o644); err != nil {
		return DistResult{}, err
	}
	if err := sums.Hash(stage, manifest.ManifestName); err != nil {
		return DistResult{}, err
	}
	if err := os.WriteFile(filepath.Join(stage, artifact.SumsName), sums.Bytes(), 0o644); err != nil {
		return DistResult{}, err
	}
	if err := files.ReplaceDir(stage, dir); err != nil {
		return DistResult{}, err
	}
	all := append(assets, manifest.ManifestName, artifact.SumsName)
	sort.Strings(all)
	for _, a := range all {
		fi, _ := os.Stat(filepath.Join(dir, a))
		fmt.Fprintf(w, "  %-60s %s\n", a, humanSize(fi))
	}
	logRun(cfg.Paths.Dist, "dist", m.Tag, start, "")
	return DistResult{Dir: dir, Tag: m.Tag, Assets: all}, nil
}

// writeSBOM lists the kernel and every package of every root filesystem, with licence and checksum,
// as a CycloneDX BOM.
func writeSBOM(path string, m manifest.Manifest, version string, epoch time.Time) error {
	k := m.Kernel
	kernel := artifact.Component{Name: "linux", Version: k.Version, License: "GPL-2.0-only WITH Linux-syscall-note",
		SHA256: k.TarballSHA256, Homepage: "https://www.kernel.org/", OS: true}
	if fetch.IsURL(k.Source) {
		kernel.Download = k.Source
	}
	top := []artifact.Component{kernel}
	for _, r := range m.Rootfs {
		root := artifact.Component{Name: "rootfs-" + r.Recipe, Version: version, OS: true}
		for _, p := range r.Packages {
			root.Contains = append(root.Contains, artifact.Component{Name: p.Name, Version: p.Version, License: p.License,
				SHA256: p.SHA256, Homepage: p.Homepage, Supplier: p.Repository, Download: p.Repository + "/" + p.Pkgver + "." + p.Arch + ".xbps"})
		}
		top = append(top, root)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := artifact.WriteSBOM(f, "simple-uml", m.Tag, epoch, top); err != nil {
		f.Close()
		return fmt.Errorf("SBOM: %w", err)
	}
	return f.Close()
}

// distRootfs reads every root filesystem record in dist/, sorted by recipe.
func distRootfs(dist string) ([]manifest.RootfsRecord, error) {
	matches, _ := filepath.Glob(filepath.Join(dist, "*.json"))
	var out []manifest.RootfsRecord
	for _, p := range matches {
		if filepath.Base(p) == manifest.KernelRecordName {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r manifest.RootfsRecord
		err = json.Unmarshal(data, &r)
		if err != nil || r.Recipe == "" || len(r.Packages) == 0 {
			// A JSON file beside an image of its name is that image's record: a broken one must not
			// make the release leave the root filesystem out without a word.
			name := strings.TrimSuffix(filepath.Base(p), ".json")
			if image, _, _ := RootfsOutputs(dist, name); files.Exists(image) {
				return nil, fmt.Errorf("%s, the record of %s, is not a readable root filesystem record (%v): rebuild it with `go tool mage rootfs -recipe=%s`", p, image, err, name)
			}
			continue
		}
		image, tarball, _ := RootfsOutputs(dist, r.Recipe)
		for _, f := range []string{image, tarball} {
			if want, ok := r.Outputs[filepath.Base(f)]; !ok || !want.Unchanged(f) {
				return nil, fmt.Errorf("%s does not match its record %s: rebuild with `go tool mage rootfs`", f, p)
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Recipe < out[j].Recipe })
	return out, nil
}

// releaseEpoch is SOURCE_DATE_EPOCH when set, else the kernel's build timestamp (its release time).
func releaseEpoch(k *manifest.KernelRecord) (time.Time, error) {
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want seconds since 1970", v)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	for _, e := range k.BuildEnv {
		if v, ok := strings.CutPrefix(e, "KBUILD_BUILD_TIMESTAMP="); ok {
			t, err := time.Parse(time.RFC1123Z, v)
			if err != nil {
				return time.Time{}, fmt.Errorf("kernel record: KBUILD_BUILD_TIMESTAMP %q: %w", v, err)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("kernel record has no KBUILD_BUILD_TIMESTAMP; set SOURCE_DATE_EPOCH")
}

func copyFrom(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func humanSize(fi os.FileInfo) string {
	if fi == nil {
		return "?"
	}
	n := fi.Size()
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
