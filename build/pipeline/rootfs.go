package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/rootfs"
	"github.com/simple-uml/simple-uml/build/uml"
)

// rootfsFormat changes when the way an image is assembled changes, so old outputs are rebuilt.
const rootfsFormat = "simple-uml rootfs 1"

// RootfsResult says what Rootfs did.
type RootfsResult struct {
	Record   manifest.RootfsRecord
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
	rec := manifest.RootfsRecord{Recipe: name, Arch: recipe.Arch, Boot: &manifest.BootRecord{Hostname: recipe.Hostname, RootPassword: recipe.RootPassword}}
	if rec.RecipeSHA256, err = recipe.Digest(); err != nil {
		return RootfsResult{}, err
	}
	for _, r := range repos {
		rec.Repositories = append(rec.Repositories, manifest.RepoRecord{URL: rootfs.PublicRepo(r.URL), Fingerprint: r.Fingerprint, RepodataSHA256: r.RepodataSHA256})
	}
	var chosen []string
	for _, p := range pkgs {
		chosen = append(chosen, p.Pkgver+" "+p.FilenameSHA256)
	}
	rec.InputKey = manifest.HashJSON(struct {
		Format, Recipe, Arch string
		Repos                []manifest.RepoRecord
		Packages             []string
	}{rootfsFormat, rec.RecipeSHA256, rec.Arch, rec.Repositories, chosen})
	image, tarball, recordPath := RootfsOutputs(cfg.Paths.Dist, name)
	if old, ok := manifest.ReadCurrent[manifest.RootfsRecord](recordPath, rec.InputKey); ok {
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
		rec.Packages = append(rec.Packages, manifest.PackageRecord{
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
		if kernel, err = kernelForConfigureBoot(ctx, cfg, w); err != nil {
			return RootfsResult{}, err
		}
		sum, err := fetch.FileSHA256(kernel)
		if err != nil {
			return RootfsResult{}, err
		}
		rec.Configure = &manifest.ConfigureRecord{Scripts: len(staged.Scripts), KernelSHA256: sum}
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
	rec.Outputs = map[string]manifest.Output{}
	for tmp, final := range map[string]string{tmpImage: image, tmpTarball: tarball} {
		if err := os.Rename(tmp, final); err != nil {
			return RootfsResult{}, err
		}
		out, err := manifest.Describe(final)
		if err != nil {
			return RootfsResult{}, err
		}
		rec.Outputs[filepath.Base(final)] = out
	}
	if err := files.WriteJSON(recordPath, rec); err != nil {
		return RootfsResult{}, err
	}
	fmt.Fprintf(w, "rootfs %s built: %s, %s in %s (%s)\n", name, image, tarball, time.Since(start).Round(time.Millisecond), phases)
	logRun(cfg.Paths.Dist, "rootfs", name, start, phases.String())
	return RootfsResult{Record: rec, Image: image, Tarball: tarball}, nil
}

// kernelForConfigureBoot is the kernel for the configure boot: the configured one, or dist's, built or
// brought up to date first.
func kernelForConfigureBoot(ctx context.Context, cfg config.Config, w io.Writer) (string, error) {
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
