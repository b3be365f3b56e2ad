package manifest

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/ident"
)

// KernelRecordName is the kernel's record in dist/.
const KernelRecordName = "linux.json"

// Digest is a file and its sha256.
type Digest struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
}

// KernelRecord is dist/linux.json: what went into the kernel and what came out. It holds no times or
// host facts that change between identical builds.
type KernelRecord struct {
	Version       string   `json:"version"`
	Source        string   `json:"source"` // download URL, "local:<file name>", or "tree:<path>"
	TarballSHA256 string   `json:"tarball_sha256"`
	Tree          *Tree    `json:"tree,omitempty"` // the source tree built (kernel.tree), not a tarball
	Patches       []Digest `json:"patches"`
	Fragments     []Digest `json:"fragments"`
	Subarch       string   `json:"subarch"`
	Compiler      string   `json:"compiler"`
	CCWrapper     string   `json:"cc_wrapper,omitempty"`
	BuildEnv      []string `json:"build_env"`
	MakeTargets   string   `json:"make"`
	// ConfigChanges lists the Kconfig options new or changed against the build of ConfigBase, the
	// previous version dist/ held (after a bump); not an input.
	ConfigBase    string            `json:"config_base,omitempty"`
	ConfigChanges []string          `json:"config_changes,omitempty"`
	InputKey      string            `json:"input_key"` // sha256 over every field above but ConfigBase/ConfigChanges
	Outputs       map[string]string `json:"outputs"`   // dist file name -> sha256
	// CCache is what ccache did for the build (cc_wrapper = "ccache"): how it went, not an input, and
	// left out of releases.
	CCache *CCacheStats `json:"ccache,omitempty"`
}

// CCacheStats counts a build's compilations that ccache answered from its cache (local or remote
// storage) and those it had to compile.
type CCacheStats struct {
	Hits       int64 `json:"hits"`
	RemoteHits int64 `json:"remote_hits"` // of Hits, those from the remote storage
	Misses     int64 `json:"misses"`
}

// Tree is a source tree of the user's that a kernel was built from: its git commit when it is a git
// work tree, and whether files differed from that commit.
type Tree struct {
	Path   string `json:"path"`
	Commit string `json:"commit,omitempty"`
	Dirty  bool   `json:"dirty,omitempty"`
}

// CheckOutputs checks, by content, that dir holds the recorded outputs. Their names come from a
// record or a fetched manifest, so each must be a plain file name before it is opened.
func (r *KernelRecord) CheckOutputs(dir string) error {
	if len(r.Outputs) == 0 {
		return fmt.Errorf("kernel record %s lists no outputs", r.Version)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Outputs)) {
		want := r.Outputs[name]
		if err := ident.Name("output name", name); err != nil {
			return fmt.Errorf("kernel record: %w", err)
		}
		got, err := digest.File(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s: sha256 %s, recorded %s", name, got, want)
		}
	}
	return nil
}

// RootfsRecord is dist/<recipe>.json: the manifest of a root filesystem, the inputs that made it
// and the digests of what came out. Later stages (dist, release notes, SBOM) read it.
type RootfsRecord struct {
	Recipe       string            `json:"recipe"`
	RecipeSHA256 string            `json:"recipe_sha256"` // recipe file and overlay
	Arch         string            `json:"arch"`
	Repositories []RepoRecord      `json:"repositories"`
	Packages     []PackageRecord   `json:"packages"`
	Configure    *ConfigureRecord  `json:"configure,omitempty"`
	Tools        map[string]string `json:"tools"` // versions of the host tools that made the image
	InputKey     string            `json:"input_key"`
	Outputs      map[string]Output `json:"outputs"`
	// Boot is what booting the image needs from its recipe, so that a fetched release boots where
	// the recipe file is not.
	Boot *BootRecord `json:"boot,omitempty"`
}

// Pkgvers are the image's packages by name and version, as xbps names them (busybox-1.36.1_1).
func (r *RootfsRecord) Pkgvers() []string {
	var out []string
	for _, p := range r.Packages {
		out = append(out, p.Pkgver)
	}
	return out
}

// BootRecord is the part of a recipe that `mage boot` and `mage test` use. The root password is the
// recipe's: public wherever the recipe is, and in the image as a hash anyway.
type BootRecord struct {
	Hostname     string `json:"hostname,omitempty"`
	RootPassword string `json:"root_password,omitempty"`
}

// RepoRecord is one repository as it was when the image was made.
type RepoRecord struct {
	URL            string `json:"url"`
	Fingerprint    string `json:"fingerprint,omitempty"`
	RepodataSHA256 string `json:"repodata_sha256"`
}

// PackageRecord is one installed package.
type PackageRecord struct {
	Pkgver        string `json:"pkgver"`
	Name          string `json:"name"`
	Version       string `json:"version"`
	Arch          string `json:"arch"`
	Repository    string `json:"repository"`
	SHA256        string `json:"sha256"`
	Size          int64  `json:"size"`
	InstalledSize uint64 `json:"installed_size"`
	License       string `json:"license,omitempty"`
	Homepage      string `json:"homepage,omitempty"`
	Automatic     bool   `json:"automatic"`
	Verified      string `json:"verified"` // sig2, sig or sha256
}

// ConfigureRecord says which kernel ran the packages' INSTALL scripts.
type ConfigureRecord struct {
	Scripts      int    `json:"scripts"`
	KernelSHA256 string `json:"kernel_sha256"`
}

// Output is a file in dist/ with its digest; size and mtime let a rerun see it is untouched without
// hashing a gigabyte image.
type Output struct {
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns,omitempty"` // in dist's record only: when this run wrote it
}

// Describe records the file at path as an Output.
func Describe(path string) (Output, error) {
	sum, err := digest.File(path)
	if err != nil {
		return Output{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Output{}, err
	}
	return Output{SHA256: sum, Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano()}, nil
}

// Unchanged reports whether the file at path is still the one o describes, by size and mtime:
// hashing a gigabyte image on every check would cost seconds.
func (o Output) Unchanged(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Size() == o.Size && fi.ModTime().UnixNano() == o.MtimeNS
}

// CheckOutputs checks that dir still holds the outputs the record lists, unchanged since they were
// written. The names must be plain file names.
func (r *RootfsRecord) CheckOutputs(dir string) error {
	if len(r.Outputs) == 0 {
		return fmt.Errorf("root filesystem record %s lists no outputs", r.Recipe)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Outputs)) {
		if err := ident.Name("output name", name); err != nil {
			return fmt.Errorf("root filesystem record: %w", err)
		}
		if !r.Outputs[name].Unchanged(filepath.Join(dir, name)) {
			return fmt.Errorf("%s is not the file its record %s.json describes", filepath.Join(dir, name), r.Recipe)
		}
	}
	return nil
}

// record is what a stage writes beside its outputs.
type record interface {
	recordedKey() string
	CheckOutputs(dir string) error
}

func (r *KernelRecord) recordedKey() string { return r.InputKey }
func (r *RootfsRecord) recordedKey() string { return r.InputKey }

// ReadCurrent reads the record at path and returns it when it was made from inputs with this key and
// the folder it is in still holds its outputs intact: then the stage has nothing to do.
func ReadCurrent[R any, P interface {
	*R
	record
}](path, key string) (*R, bool) {
	r := new(R)
	if files.ReadJSON(path, r) != nil || P(r).recordedKey() != key || P(r).CheckOutputs(filepath.Dir(path)) != nil {
		return nil, false
	}
	return r, true
}

// ReadKernelRecord reads dist's kernel record.
func ReadKernelRecord(dist string) (*KernelRecord, error) {
	var r KernelRecord
	if err := files.ReadJSON(filepath.Join(dist, KernelRecordName), &r); err != nil {
		return nil, err
	}
	return &r, nil
}
