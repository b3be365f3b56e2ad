// Package manifest holds the records simple-uml writes and reads back: the kernel's and each root
// filesystem's record in dist/, and a release's manifest.json, its asset names, its checks against
// SHA256SUMS and its notes. What comes from a fetched release is checked before anything trusts it.
package manifest

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/ident"
)

// Release file names besides the archives.
const (
	ManifestName = "manifest.json"
	NotesName    = "RELEASE-NOTES.md"
)

// Manifest is manifest.json: what a release was made from and what it holds. It has no host paths
// and no times but the release's SOURCE_DATE_EPOCH, so equal inputs give an equal manifest.
type Manifest struct {
	// Format is the version of the release's layout (what dist writes and where): a release made
	// before a change of layout is never up to date.
	Format          int               `json:"format"`
	Tag             string            `json:"tag"`
	Revision        int               `json:"revision"`
	SourceDateEpoch int64             `json:"source_date_epoch"`
	Kernel          KernelRecord      `json:"kernel"`
	Rootfs          []RootfsRecord    `json:"rootfs"`
	Assets          map[string]string `json:"assets"` // file name -> sha256, every asset but this file and SHA256SUMS
}

// Tag is the release tag of a kernel version and packaging revision: v6.12.117-1.
func Tag(version string, revision int) string { return fmt.Sprintf("v%s-%d", version, revision) }

// The release's asset names, one place for mage dist, which writes them, and mage fetch, which
// looks for them. version is the tag without its v.

// KernelAsset is the kernel tarball's name.
func KernelAsset(version, subarch string) string {
	return fmt.Sprintf("simple-uml-linux-%s-um-%s.tar.xz", version, subarch)
}

// RootfsAssetBase is the name of a root filesystem's assets without the suffix: .ext4.zst for the
// image, .tar.zst for the tarball.
func RootfsAssetBase(recipe, arch, version string) string {
	return fmt.Sprintf("simple-uml-rootfs-%s-%s-%s", recipe, arch, version)
}

// SBOMAsset is the CycloneDX SBOM's name.
func SBOMAsset(version string) string { return fmt.Sprintf("simple-uml-%s.cdx.json", version) }

// Read reads a manifest.json; a missing file is (nil, nil).
func Read(path string) (*Manifest, error) {
	var m Manifest
	err := files.ReadJSON(path, &m)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// Verify checks a release folder: every file against SHA256SUMS, and the manifest against both.
func Verify(dir string) (*Manifest, error) {
	sums, problems, err := artifact.VerifyDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	problems = append(problems, m.Disagreements(sums)...)
	if len(problems) > 0 {
		sort.Strings(problems)
		return &m, fmt.Errorf("release %s in %s does not verify:\n  %s", m.Tag, dir, strings.Join(problems, "\n  "))
	}
	return &m, nil
}

// Disagreements lists where the manifest's asset digests and SHA256SUMS differ: an asset missing from
// either, a different digest, or the manifest itself not listed.
func (m *Manifest) Disagreements(sums artifact.Sums) []string {
	var out []string
	if _, ok := sums[ManifestName]; !ok {
		out = append(out, ManifestName+": not listed in "+artifact.SumsName)
	}
	for name, want := range m.Assets {
		if got, ok := sums[name]; !ok || got != want {
			out = append(out, fmt.Sprintf("%s: the manifest says sha256 %s, %s says %q", name, want, artifact.SumsName, got))
		}
	}
	for name := range sums {
		if _, ok := m.Assets[name]; !ok && name != ManifestName {
			out = append(out, name+": in "+artifact.SumsName+" but not in the manifest")
		}
	}
	sort.Strings(out)
	return out
}

// Current reports whether dir holds the release m describes (the same format, tag, kernel record, root
// filesystem records and asset names, m's assets being the names it will have; a release folder is
// written only as a whole), and lists its files. It reads the manifest and checks the files are
// there, not their bytes: Verify does that.
func Current(dir string, m Manifest) ([]string, bool) {
	old, ok := ReadCurrent[Manifest](filepath.Join(dir, ManifestName), m.recordedKey())
	if !ok {
		return nil, false
	}
	return old.files(), true
}

// recordedKey is the part of a manifest that says which release it is: what it was made from, and
// the layout it was written in, down to the names of its assets.
func (m *Manifest) recordedKey() string {
	return digest.JSON(struct {
		Manifest
		Names []string
	}{Manifest{Format: m.Format, Tag: m.Tag, Revision: m.Revision, SourceDateEpoch: m.SourceDateEpoch, Kernel: m.Kernel, Rootfs: m.Rootfs}, m.files()})
}

// files lists the release folder's files: the assets, the manifest and SHA256SUMS.
func (m *Manifest) files() []string {
	names := append(slices.Collect(maps.Keys(m.Assets)), ManifestName, artifact.SumsName)
	sort.Strings(names)
	return names
}

// CheckOutputs checks that dir holds every file of the release as a regular file. The names come
// from a manifest, so each must be a plain file name.
func (m *Manifest) CheckOutputs(dir string) error {
	if len(m.Assets) == 0 {
		return fmt.Errorf("manifest of %s lists no assets", m.Tag)
	}
	for _, name := range m.files() {
		if err := ident.Name("asset name", name); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		if fi, err := os.Lstat(filepath.Join(dir, name)); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file in %s", name, dir)
		}
	}
	return nil
}

// SBOMComponents are what the release holds as an SBOM lists them: the kernel, and each root
// filesystem with every package in it, with licence and checksum. version is the tag without its v.
func (m *Manifest) SBOMComponents(version string) []artifact.Component {
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
	return top
}
