package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/rootfs"
	"github.com/simple-uml/simple-uml/build/ui"
	"github.com/simple-uml/simple-uml/build/uml"
	"github.com/simple-uml/simple-uml/build/xbps"
)

// rootfsFormat changes when the way an image is assembled changes, so old outputs are rebuilt.
const rootfsFormat = "simple-uml rootfs 2"

// RootfsResult says what Rootfs did.
type RootfsResult struct {
	Record   manifest.RootfsRecord
	UpToDate bool
	Image    string
	Tarball  string
}

// Rootfs assembles the named recipe (empty: the configured default) into dist/: a sparse ext4 image,
// a tarball of the same tree and the package manifest. Progress and commands go to w.
func Rootfs(ctx context.Context, cfg config.Config, name string, w io.Writer) (RootfsResult, error) {
	start := time.Now()
	if name == "" {
		name = cfg.Rootfs.Recipe
	}
	// A recipe that is not there, or not right, is said before the host's tools are checked or the
	// lock taken.
	recipe, err := rootfs.LoadRecipe(cfg.Paths.Recipes, name)
	if err != nil {
		return RootfsResult{}, err
	}
	if err := host.Check(host.Image); err != nil {
		return RootfsResult{}, err
	}
	ctx, run, err := startRun(ctx, cfg, "mage rootfs "+name, w)
	if err != nil {
		return RootfsResult{}, err
	}
	defer run.end()
	b, err := planRootfs(ctx, cfg, recipe, w)
	if err != nil {
		return RootfsResult{}, err
	}
	if old, ok := manifest.ReadCurrent[manifest.RootfsRecord](b.recordPath, b.rec.InputKey); ok {
		fmt.Fprintf(w, "rootfs %s is up to date in %s (%d packages, inputs %s); nothing to do (%s)\n",
			name, cfg.Paths.Dist, len(old.Packages), b.rec.InputKey[:12], time.Since(start).Round(time.Millisecond))
		return RootfsResult{Record: *old, UpToDate: true, Image: b.image, Tarball: b.tarball}, nil
	}
	fmt.Fprintf(w, "rootfs %s: %d packages for %s from %d repositories; fetching and verifying (%d at a time)\n",
		name, len(b.pkgs), b.recipe.Arch, len(b.repos), cfg.Rootfs.Downloads)
	defer b.cleanup()
	timer := newStepTimer()
	if err := runSteps(ctx, timer,
		step{name: "fetch+verify", run: b.fetch},
		step{name: "unpack", run: b.stage},
		step{name: "kernel", run: b.configureKernel, skip: b.noScripts},
		step{name: "image", run: b.makeImage},
		step{name: "configure boot", run: b.configureBoot, skip: b.noScripts},
		step{name: "reimage", run: b.reimage, skip: b.noScripts},
		step{name: "tarball", run: b.writeTarball},
	); err != nil {
		return RootfsResult{}, err
	}
	if err := b.install(); err != nil {
		return RootfsResult{}, err
	}
	fmt.Fprintf(w, "rootfs %s built: %s, %s in %s (%s)\n", name, b.image, b.tarball, time.Since(start).Round(time.Millisecond), timer)
	run.log("rootfs", name, start, timer.String())
	return RootfsResult{Record: b.rec, Image: b.image, Tarball: b.tarball}, nil
}

// rootfsBuild is one assembly of a recipe, what each of its steps reads and leaves.
type rootfsBuild struct {
	cfg    config.Config
	w      io.Writer
	name   string
	recipe *rootfs.Recipe
	cache  *fetch.Cache
	repos  []*rootfs.Repo
	pkgs   []*xbps.Resolved
	rec    manifest.RootfsRecord // filled in as the steps go

	image, tarball, recordPath string // the outputs in dist/
	tmpImage, tmpTarball       string // the same, under temporary names until install
	work, tree                 string // the work folder and the staged tree in it

	fetched []*rootfs.Fetched
	staged  *rootfs.Staged
	kernel  string // of the configure boot; empty when no package has an INSTALL script
	opts    rootfs.ImageOptions
}

// planRootfs reads the recipe's repositories and resolves its packages: everything the input key
// covers, known before any package is downloaded.
func planRootfs(ctx context.Context, cfg config.Config, recipe *rootfs.Recipe, w io.Writer) (*rootfsBuild, error) {
	name := recipe.Name
	b := &rootfsBuild{cfg: cfg, w: w, name: name, recipe: recipe, cache: &fetch.Cache{Dir: cfg.Paths.Downloads, Log: w, Quiet: true}}
	var err error
	if b.repos, err = rootfs.LoadRepositories(ctx, b.cache, b.recipe); err != nil {
		return nil, err
	}
	if b.pkgs, err = rootfs.Resolve(b.repos, b.recipe); err != nil {
		return nil, fmt.Errorf("recipe %s: %w", b.recipe.Path, err)
	}
	b.rec = manifest.RootfsRecord{Recipe: name, Arch: b.recipe.Arch, Boot: &manifest.BootRecord{Hostname: b.recipe.Hostname, RootPassword: b.recipe.RootPassword}}
	if b.rec.RecipeSHA256, err = b.recipe.Digest(); err != nil {
		return nil, err
	}
	for _, r := range b.repos {
		b.rec.Repositories = append(b.rec.Repositories, manifest.RepoRecord{URL: rootfs.PublicRepo(r.URL), Fingerprint: r.Fingerprint, RepodataSHA256: r.RepodataSHA256})
	}
	var chosen []string
	for _, p := range b.pkgs {
		chosen = append(chosen, p.Pkgver+" "+p.FilenameSHA256)
	}
	b.rec.InputKey = digest.JSON(struct {
		Format, Recipe, Arch string
		Repos                []manifest.RepoRecord
		Packages             []string
	}{rootfsFormat, b.rec.RecipeSHA256, b.rec.Arch, b.rec.Repositories, chosen})
	b.image, b.tarball, b.recordPath = manifest.RootfsFiles(cfg.Paths.Dist, name)
	b.tmpImage = filepath.Join(cfg.Paths.Dist, "."+filepath.Base(b.image)+".tmp")
	b.tmpTarball = filepath.Join(cfg.Paths.Dist, "."+filepath.Base(b.tarball)+".tmp")
	b.work = filepath.Join(cfg.Paths.Cache, "rootfs", b.rec.InputKey[:16])
	b.tree = filepath.Join(b.work, "tree")
	return b, nil
}

// cleanup removes the work folder and whatever temporary output install did not rename.
func (b *rootfsBuild) cleanup() {
	os.RemoveAll(b.work)
	for _, p := range []string{b.tmpImage, b.tmpTarball, b.tmpImage + ".configured"} {
		os.Remove(p)
	}
}

func (b *rootfsBuild) noScripts() bool { return len(b.staged.Scripts) == 0 }

// fetch downloads and verifies the packages into the download cache.
func (b *rootfsBuild) fetch(ctx context.Context) error {
	var err error
	if b.fetched, err = rootfs.Fetch(ctx, b.cache, b.repos, b.pkgs, b.cfg.Rootfs.Downloads); err != nil {
		return err
	}
	for _, f := range b.fetched {
		b.rec.Packages = append(b.rec.Packages, manifest.PackageRecord{
			Pkgver: f.Pkgver, Name: f.Name, Version: f.Version, Arch: f.Arch, Repository: rootfs.PublicRepo(f.Repo.URL), SHA256: f.SHA256,
			Size: f.Size, InstalledSize: f.InstalledSize, License: f.License, Homepage: f.Homepage, Automatic: f.Automatic, Verified: f.Verified,
		})
	}
	if err := os.RemoveAll(b.work); err != nil {
		return err
	}
	return os.MkdirAll(b.tree, 0o755)
}

// stage unpacks the packages into the tree.
func (b *rootfsBuild) stage(ctx context.Context) error {
	var err error
	if b.staged, err = rootfs.Stage(ctx, b.tree, b.recipe, b.repos, b.fetched); err != nil {
		return fmt.Errorf("rootfs %s: %w", b.name, err)
	}
	return nil
}

// configureKernel finds, or builds, the kernel of the configure boot that runs the packages'
// INSTALL scripts.
func (b *rootfsBuild) configureKernel(ctx context.Context) error {
	var err error
	if b.kernel, err = kernelForConfigureBoot(ctx, b.cfg, b.w); err != nil {
		return err
	}
	sum, err := digest.File(b.kernel)
	if err != nil {
		return err
	}
	b.rec.Configure = &manifest.ConfigureRecord{Scripts: len(b.staged.Scripts), KernelSHA256: sum}
	return nil
}

// makeImage makes the ext4 image of the tree, rootless, and frees the tree.
func (b *rootfsBuild) makeImage(ctx context.Context) error {
	// LoadRecipe checked the size; a recipe made some other way is refused here, not imaged at size 0.
	size, err := b.recipe.ImageBytes()
	if err != nil {
		return fmt.Errorf("recipe %s: %w", b.recipe.Path, err)
	}
	if err := os.MkdirAll(b.cfg.Paths.Dist, 0o755); err != nil {
		return err
	}
	b.rec.Tools = host.Versions(ctx, [][]string{{"mke2fs", "-V"}, {"debugfs", "-V"}, {"fakeroot", "-v"}})
	if err := os.Remove(b.tmpImage); err != nil && !errors.Is(err, os.ErrNotExist) { // a failed run's
		return err
	}
	b.opts = rootfs.ImageOptions{Size: size, UUID: rootfs.UUIDFrom(b.rec.InputKey), Label: b.name, Epoch: b.staged.Epoch,
		Owners: b.staged.Owners, Modes: b.staged.Modes, Log: b.w}
	if err := rootfs.MakeImage(ctx, b.tree, b.tmpImage, b.opts); err != nil {
		return err
	}
	return os.RemoveAll(b.tree) // the image holds it now; free the space before the boot
}

// configureBoot runs the packages' INSTALL scripts in a boot of the image, sandboxed, with no
// network and no host files.
func (b *rootfsBuild) configureBoot(ctx context.Context) error {
	guest := guestOptions(b.cfg, b.kernel)
	guest.Timeout = 10 * time.Minute // every INSTALL script of the image, however many
	fmt.Fprintf(b.w, "configure boot: running %d INSTALL scripts as root of the guest (%s; no network, no host files; sandbox: %s)\n",
		len(b.staged.Scripts), b.kernel, uml.DescribeSandbox(uml.Options{Image: b.tmpImage, Sandbox: guest.Sandbox}))
	// The console log is kept beside the work folder, which is removed at the end either way.
	logPath := filepath.Join(b.cfg.Paths.Cache, "rootfs", b.name+"-configure.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	res, err := rootfs.ConfigureBoot(ctx, guest, b.tmpImage, uml.ConsoleLog(logFile))
	logFile.Close()
	if err != nil {
		return fmt.Errorf("rootfs %s: %w\n  full console: %s", b.name, err, logPath)
	}
	var slowest []string
	times := rootfs.ScriptTimes(res.Console)
	for _, s := range times[:min(3, len(times))] {
		slowest = append(slowest, fmt.Sprintf("%s %s %s", ui.Visible(s.Pkgver), s.Action, s.Took.Round(10*time.Millisecond)))
	}
	fmt.Fprintf(b.w, "configure boot done in %s (slowest scripts: %s)\n", res.Duration.Round(time.Millisecond), strings.Join(slowest, ", "))
	return nil
}

// reimage makes the image again from what the configure boot left, without the guest's clock.
func (b *rootfsBuild) reimage(ctx context.Context) error {
	configured := b.tmpImage + ".configured"
	if err := os.Rename(b.tmpImage, configured); err != nil {
		return err
	}
	defer os.Remove(configured)
	b.opts.Owners = nil
	if err := rootfs.Reimage(ctx, configured, b.tmpImage, b.opts); err != nil {
		return fmt.Errorf("rootfs %s: %w", b.name, err)
	}
	return nil
}

// writeTarball packs the image's tree as a reproducible .tar.zst.
func (b *rootfsBuild) writeTarball(ctx context.Context) error {
	if err := rootfs.WriteTarballZstd(ctx, b.tmpImage, b.tmpTarball, b.staged.Epoch); err != nil {
		return fmt.Errorf("rootfs %s: tarball: %w", b.name, err)
	}
	return nil
}

// install renames the outputs into place and writes the record last: the old record goes first, so
// a half-replaced dist never looks complete.
func (b *rootfsBuild) install() error {
	if err := os.Remove(b.recordPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	b.rec.Outputs = map[string]manifest.Output{}
	for tmp, final := range map[string]string{b.tmpImage: b.image, b.tmpTarball: b.tarball} {
		if err := os.Rename(tmp, final); err != nil {
			return err
		}
		out, err := manifest.Describe(final)
		if err != nil {
			return err
		}
		b.rec.Outputs[filepath.Base(final)] = out
	}
	return files.WriteJSON(b.recordPath, b.rec)
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
	return filepath.Join(cfg.Paths.Dist, kernel.LinuxName), nil
}
