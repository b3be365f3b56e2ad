package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/rootfs"
	"github.com/simple-uml/simple-uml/build/uml"
)

// rootfsFormat changes when the way an image is assembled changes, so old outputs are rebuilt.
const rootfsFormat = "simple-uml rootfs 1"

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

// RootfsResult says what Rootfs did.
type RootfsResult struct {
	Record   RootfsRecord
	UpToDate bool
	Image    string
	Tarball  string
}

// RootfsOutputs names a recipe's files in dist/.
func RootfsOutputs(dist, recipe string) (image, tarball, record string) {
	return filepath.Join(dist, recipe+".ext4"), filepath.Join(dist, recipe+".tar.zst"), filepath.Join(dist, recipe+".json")
}

// Rootfs assembles the named recipe (empty: the configured default) into dist/: a sparse ext4 image,
// a tarball of the same tree and the package manifest. Progress and commands go to w.
func Rootfs(ctx context.Context, cfg config.Config, name string, w io.Writer) (RootfsResult, error) {
	start := time.Now()
	if name == "" {
		name = cfg.Rootfs.Recipe
	}
	if err := host.Check(host.Image); err != nil {
		return RootfsResult{}, err
	}
	unlock, err := startRun(ctx, cfg, "mage rootfs "+name, w)
	if err != nil {
		return RootfsResult{}, err
	}
	defer unlock()
	recipe, err := rootfs.LoadRecipe(cfg.Paths.Recipes, name)
	if err != nil {
		return RootfsResult{}, err
	}
	cache := &fetch.Cache{Dir: cfg.Paths.Downloads, Log: w, Quiet: true}
	repos, err := rootfs.LoadRepositories(ctx, cache, recipe)
	if err != nil {
		return RootfsResult{}, err
	}
	pkgs, err := rootfs.Resolve(repos, recipe)
	if err != nil {
		return RootfsResult{}, fmt.Errorf("recipe %s: %w", recipe.Path, err)
	}
	rec := RootfsRecord{Recipe: name, Arch: recipe.Arch, Boot: &BootRecord{Hostname: recipe.Hostname, RootPassword: recipe.RootPassword}}
	if rec.RecipeSHA256, err = recipe.Digest(); err != nil {
		return RootfsResult{}, err
	}
	for _, r := range repos {
		rec.Repositories = append(rec.Repositories, RepoRecord{URL: rootfs.PublicRepo(r.URL), Fingerprint: r.Fingerprint, RepodataSHA256: r.RepodataSHA256})
	}
	var chosen []string
	for _, p := range pkgs {
		chosen = append(chosen, p.Pkgver+" "+p.FilenameSHA256)
	}
	rec.InputKey = hashJSON(struct {
		Format, Recipe, Arch string
		Repos                []RepoRecord
		Packages             []string
	}{rootfsFormat, rec.RecipeSHA256, rec.Arch, rec.Repositories, chosen})
	image, tarball, recordPath := RootfsOutputs(cfg.Paths.Dist, name)
	if old, ok := rootfsUpToDate(recordPath, rec.InputKey); ok {
		fmt.Fprintf(w, "rootfs %s is up to date in %s (%d packages, inputs %s); nothing to do (%s)\n",
			name, cfg.Paths.Dist, len(old.Packages), rec.InputKey[:12], time.Since(start).Round(time.Millisecond))
		return RootfsResult{Record: *old, UpToDate: true, Image: image, Tarball: tarball}, nil
	}

	fmt.Fprintf(w, "rootfs %s: %d packages for %s from %d repositories; fetching and verifying (%d at a time)\n",
		name, len(pkgs), recipe.Arch, len(repos), cfg.Rootfs.Downloads)
	phases := &phaseTimer{last: time.Now()}
	fetched, err := rootfs.Fetch(ctx, cache, repos, pkgs, cfg.Rootfs.Downloads)
	if err != nil {
		return RootfsResult{}, err
	}
	for _, f := range fetched {
		rec.Packages = append(rec.Packages, PackageRecord{
			Pkgver: f.Pkgver, Name: f.Name, Version: f.Version, Arch: f.Arch, Repository: rootfs.PublicRepo(f.Repo.URL), SHA256: f.SHA256,
			Size: f.Size, InstalledSize: f.InstalledSize, License: f.License, Homepage: f.Homepage, Automatic: f.Automatic, Verified: f.Verified,
		})
	}

	work := filepath.Join(cfg.Paths.Cache, "rootfs", rec.InputKey[:16])
	if err := os.RemoveAll(work); err != nil {
		return RootfsResult{}, err
	}
	defer os.RemoveAll(work)
	tree := filepath.Join(work, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return RootfsResult{}, err
	}
	phases.done("fetch+verify")
	staged, err := rootfs.Stage(ctx, tree, recipe, repos, fetched)
	if err != nil {
		return RootfsResult{}, fmt.Errorf("rootfs %s: %w", name, err)
	}
	phases.done("unpack")
	var kernel string
	if len(staged.Scripts) > 0 {
		if kernel, err = configureKernel(ctx, cfg, w); err != nil {
			return RootfsResult{}, err
		}
		sum, err := fetch.FileSHA256(kernel)
		if err != nil {
			return RootfsResult{}, err
		}
		rec.Configure = &ConfigureRecord{Scripts: len(staged.Scripts), KernelSHA256: sum}
	}

	if err := os.MkdirAll(cfg.Paths.Dist, 0o755); err != nil {
		return RootfsResult{}, err
	}
	rec.Tools = toolVersions(ctx, [][]string{{"mke2fs", "-V"}, {"debugfs", "-V"}, {"fakeroot", "-v"}})
	size, _ := recipe.ImageBytes()
	tmpImage := filepath.Join(cfg.Paths.Dist, "."+filepath.Base(image)+".tmp")
	tmpTarball := filepath.Join(cfg.Paths.Dist, "."+filepath.Base(tarball)+".tmp")
	defer os.Remove(tmpImage)
	defer os.Remove(tmpTarball)
	os.Remove(tmpImage)
	opts := rootfs.ImageOptions{Size: size, UUID: uuidFrom(rec.InputKey), Label: name, Epoch: staged.Epoch, Owners: staged.Owners, Modes: staged.Modes, Log: w}
	if err := rootfs.MakeImage(ctx, tree, tmpImage, opts); err != nil {
		return RootfsResult{}, err
	}
	os.RemoveAll(tree) // the image holds it now; free the space before the boot
	phases.done("image")
	if kernel != "" {
		sandbox := uml.Sandbox(cfg.Boot.Sandbox)
		fmt.Fprintf(w, "configure boot: running %d INSTALL scripts as root of the guest (%s; no network, no host files; sandbox: %s)\n",
			len(staged.Scripts), kernel, uml.DescribeSandbox(uml.Options{Image: tmpImage, Sandbox: sandbox}))
		// The console log is kept beside the work folder, which is removed at the end either way.
		logPath := filepath.Join(cfg.Paths.Cache, "rootfs", name+"-configure.log")
		logFile, err := os.Create(logPath)
		if err != nil {
			return RootfsResult{}, err
		}
		res, err := rootfs.ConfigureBoot(ctx, kernel, tmpImage, sandbox, 10*time.Minute, logFile)
		logFile.Close()
		if err != nil {
			return RootfsResult{}, fmt.Errorf("rootfs %s: %w\n  full console: %s", name, err, logPath)
		}
		fmt.Fprintf(w, "configure boot done in %s\n", res.Duration.Round(time.Millisecond))
		phases.done("configure boot")
		// The boot left the guest's clock in the image: make it again from what was configured.
		configured := tmpImage + ".configured"
		if err := os.Rename(tmpImage, configured); err != nil {
			return RootfsResult{}, err
		}
		defer os.Remove(configured)
		opts.Owners = nil
		if err := rootfs.Reimage(ctx, configured, tmpImage, opts); err != nil {
			return RootfsResult{}, fmt.Errorf("rootfs %s: %w", name, err)
		}
		os.Remove(configured)
		phases.done("reimage")
	}
	if err := writeTarball(ctx, tmpImage, tmpTarball, staged.Epoch); err != nil {
		return RootfsResult{}, fmt.Errorf("rootfs %s: tarball: %w", name, err)
	}
	phases.done("tarball")

	// Replace the outputs: the old record goes first, so a half-replaced dist never looks complete.
	if err := os.Remove(recordPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return RootfsResult{}, err
	}
	rec.Outputs = map[string]Output{}
	for tmp, final := range map[string]string{tmpImage: image, tmpTarball: tarball} {
		if err := os.Rename(tmp, final); err != nil {
			return RootfsResult{}, err
		}
		out, err := describeOutput(final)
		if err != nil {
			return RootfsResult{}, err
		}
		rec.Outputs[filepath.Base(final)] = out
	}
	if err := writeJSON(recordPath, rec); err != nil {
		return RootfsResult{}, err
	}
	fmt.Fprintf(w, "rootfs %s built: %s, %s in %s (%s)\n", name, image, tarball, time.Since(start).Round(time.Millisecond), phases)
	logRun(cfg.Paths.Dist, "rootfs", name, start, phases.String())
	return RootfsResult{Record: rec, Image: image, Tarball: tarball}, nil
}

// configureKernel is the kernel for the configure boot: the configured one, or dist's, built or
// brought up to date first.
func configureKernel(ctx context.Context, cfg config.Config, w io.Writer) (string, error) {
	if cfg.Rootfs.Kernel != "" {
		if _, err := os.Stat(cfg.Rootfs.Kernel); err != nil {
			return "", fmt.Errorf("rootfs.kernel: %w", err)
		}
		return cfg.Rootfs.Kernel, nil
	}
	fmt.Fprintln(w, "the packages have INSTALL scripts: they run in a configure boot of the UML kernel (building it first if needed)")
	if _, err := Kernel(ctx, cfg, w); err != nil {
		return "", fmt.Errorf("kernel for the configure boot: %w", err)
	}
	return filepath.Join(cfg.Paths.Dist, LinuxName), nil
}

func writeTarball(ctx context.Context, image, dst string, epoch time.Time) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	// One encoder thread and a fixed level, so the same tree always compresses to the same bytes.
	zw, err := zstd.NewWriter(f, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return err
	}
	if err := rootfs.Tarball(ctx, image, zw, epoch); err != nil {
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func describeOutput(path string) (Output, error) {
	sum, err := fetch.FileSHA256(path)
	if err != nil {
		return Output{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Output{}, err
	}
	return Output{SHA256: sum, Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano()}, nil
}

func rootfsUpToDate(recordPath, key string) (*RootfsRecord, bool) {
	data, err := os.ReadFile(recordPath)
	if err != nil {
		return nil, false
	}
	var r RootfsRecord
	if json.Unmarshal(data, &r) != nil || r.InputKey != key || len(r.Outputs) == 0 {
		return nil, false
	}
	for name, want := range r.Outputs {
		if !want.unchanged(filepath.Join(filepath.Dir(recordPath), name)) {
			return nil, false
		}
	}
	return &r, true
}

// unchanged reports whether the file at path is still the one o describes, by size and mtime:
// hashing a gigabyte image on every check would cost seconds.
func (o Output) unchanged(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Size() == o.Size && fi.ModTime().UnixNano() == o.MtimeNS
}

// uuidFrom makes a version-4-shaped UUID from a hex digest, so the image's identity follows its inputs.
func uuidFrom(key string) string {
	sum := sha256.Sum256([]byte(key))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// phaseTimer records how long each step took, for the closing message.
type phaseTimer struct {
	last  time.Time
	parts []string
}

func (p *phaseTimer) done(name string) {
	now := time.Now()
	p.parts = append(p.parts, fmt.Sprintf("%s %s", name, now.Sub(p.last).Round(time.Millisecond)))
	p.last = now
}

func (p *phaseTimer) String() string { return strings.Join(p.parts, ", ") }

// toolVersions records the first line each tool prints about its version.
func toolVersions(ctx context.Context, cmds [][]string) map[string]string {
	out := map[string]string{}
	for _, c := range cmds {
		prog, err := host.LookPath(c[0])
		if err != nil {
			out[c[0]] = "unknown: " + err.Error()
			continue
		}
		data, err := exec.CommandContext(ctx, prog, c[1:]...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		if err != nil && line == "" {
			line = "unknown: " + err.Error()
		}
		out[c[0]] = line
	}
	return out
}
