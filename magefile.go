//go:build mage

// simple-uml builds User-Mode Linux: a kernel from kernel.org sources, run as an ordinary process.
// Settings: simple-uml.toml, kernel.lock and rootfs-recipes/, each key overridable by a SUML_* variable (see docs/settings.md).
// Flags follow the target: go tool mage rootfs -recipe=void-musl; go tool mage -h <target> lists them,
// and go tool mage settings -target=<target> the settings it reads.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/magecli"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/pipeline"
)

// A copy of this program that Up starts for an instance is that instance's supervisor, nothing else.
func init() {
	if dir := os.Getenv(instance.SuperviseVar); dir != "" {
		os.Exit(instance.SuperviseMain(dir, nil))
	}
}

// A target's output piped to a program that Ctrl-C ends too (`| tee`) must not kill the target with
// SIGPIPE halfway through its cleanup: a write to it fails instead. Caught, not ignored: an ignored
// signal stays ignored in every program a target starts (make, UML, tmux and its shells).
func init() { signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE) }

// A closed terminal (SIGHUP) or a kill (SIGTERM) stops a target as Ctrl-C does: its context ends, and
// what it started ends with it and its private folders are removed.
func init() { magecli.InterruptOnHangupAndTerm() }

// An unknown target is answered with the targets there are (mage itself says only "Unknown target").
// config.TargetTables names every target (a test holds it to `go tool mage -l`).
func init() {
	if err := magecli.CheckTarget(os.Args[1:], slices.Collect(maps.Keys(config.TargetTables))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
}

// loadConfig reads the settings once for all the targets of one mage run, and says what to know of them.
var loadConfig = sync.OnceValues(func() (config.Config, error) {
	cfg, err := config.Load(".", nil)
	for _, note := range cfg.Notes {
		fmt.Fprintln(os.Stderr, "note:", note)
	}
	return cfg, err
})

// Kernel downloads, verifies, patches, configures and builds the pinned kernel into dist/.
func Kernel(ctx context.Context,
	series *string, // a series kernel.lock pins (its kernel goes to dist/<series>/), or all (default: kernel.series, into dist/)
) error {
	return eachSeries(series, func(cfg config.Config) error {
		_, err := pipeline.Kernel(ctx, cfg, os.Stdout)
		return err
	})
}

// Series prints the kernel series kernel.lock pins, the default first, as a JSON list (a CI matrix).
func Series() error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(cfg.PinnedSeries())
}

// Menuconfig opens the kernel's menuconfig and writes what you changed back into kconfig/ fragments.
func Menuconfig(ctx context.Context) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	_, err = pipeline.Menuconfig(ctx, cfg, os.Stdin, os.Stdout, os.Stdout)
	return err
}

// Rootfs assembles a root filesystem recipe from rootfs-recipes/ into dist/ without root rights.
func Rootfs(ctx context.Context,
	recipe *string, // the recipe to build (default: rootfs.recipe, SUML_ROOTFS_RECIPE)
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	_, err = pipeline.Rootfs(ctx, cfg, value(recipe, ""), os.Stdout)
	return err
}

// Pkg makes an xbps package of your own from a template file into dist/ (SOURCE_DATE_EPOCH dates a template without date).
func Pkg(ctx context.Context, template string,
	out *string, // the folder the package goes into (default: dist/)
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	_, err = pipeline.Pkg(ctx, cfg, os.Getenv, pipeline.PkgRequest{Template: template, Out: value(out, "")}, os.Stdout)
	return err
}

// Repo makes a folder of .xbps packages an xbps repository, signed with -key, and prints the key's fingerprint for a recipe.
func Repo(ctx context.Context, folder string,
	key *string, // the RSA private key (PEM, PKCS#1 or PKCS#8) that signs the packages and the index (default: unsigned)
	signedBy *string, // the signer's name the repository gives with its key: "Your Name <you@example.org>"
	arch *string, // the architecture whose <arch>-repodata to write (default: each one among the packages)
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	req := pipeline.RepoRequest{Dir: folder, Key: value(key, ""), SignedBy: value(signedBy, ""), Arch: value(arch, "")}
	_, err = pipeline.Repo(ctx, cfg, req, os.Stdout)
	return err
}

// Boot boots dist/'s kernel and root filesystem with the console on this terminal (SUML_BOOT_* options).
func Boot(ctx context.Context) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.Boot(ctx, cfg, os.Stdin, os.Stdout, os.Stderr)
}

// Test boots dist/'s pair without a person, runs checks and your scripts inside the guest and fails if any does not pass.
func Test(ctx context.Context,
	script *string, // a script to run in the guest too, printing KTAP or TAP (besides test.scripts)
	series *string, // boot this series' kernel (dist/<series>/linux), or all (default: kernel.series)
) error {
	return eachSeries(series, func(cfg config.Config) error {
		if script != nil {
			cfg.Test.Scripts = append(slices.Clone(cfg.Test.Scripts), *script) // the loaded settings are shared
		}
		_, err := pipeline.GuestTest(ctx, cfg, os.Stdout)
		return err
	})
}

// Lab starts labs/<name>.toml, a network of guests from dist/'s kernel and images, and keeps it up until Ctrl-C.
func Lab(ctx context.Context, name string) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	// Its tmux windows run this very binary's labConsole: `go tool mage` would compile the magefile
	// again in each, all at once in the same folder.
	return pipeline.Lab(ctx, cfg, name, []string{"labConsole"}, os.Stdout)
}

// LabConsole attaches this terminal to a guest's console in a running lab, until Ctrl-].
func LabConsole(ctx context.Context, name, guest string) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.LabConsole(ctx, cfg, name, guest, os.Stdin, os.Stdout)
}

// LabTest starts labs/<name>.toml, runs its checks inside the guests, stops it, and fails if any does not pass.
func LabTest(ctx context.Context, name string) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	_, err = pipeline.LabTest(ctx, cfg, name, os.Stdout)
	return err
}

// Kunit boots dist/'s kernel with KUnit on, reads its KTAP, writes JSON and JUnit reports, and fails unless every test passes.
func Kunit(ctx context.Context,
	filter *string, // suites and tests to run, a glob: 'list*', 'example.example_simple_test' (default: all)
	kunitconfig *string, // a .kunitconfig (or its folder, e.g. fs/ext4) whose options the kernel is built with first
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	if kunitconfig != nil {
		cfg.Kernel.KunitConfig = append(slices.Clone(cfg.Kernel.KunitConfig), *kunitconfig) // the loaded settings are shared
	}
	_, err = pipeline.Kunit(ctx, cfg, value(filter, ""), os.Stdout)
	return err
}

// Bisect finds the commit of kernel.tree between -good and -bad that broke a check: a build and a boot per step.
func Bisect(ctx context.Context,
	good *string, // the last commit known good
	bad *string, // the first commit known bad (default: HEAD)
	script *string, // the check: a script run in the booted guest after mage test's own checks
	kunit *string, // the check: a KUnit filter whose tests must pass (instead of -script)
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	_, err = pipeline.Bisect(ctx, cfg, pipeline.BisectRequest{Good: value(good, ""), Bad: value(bad, "HEAD"), Script: value(script, ""), KUnit: value(kunit, "")}, os.Stdout)
	return err
}

// Up starts instance name in the background (made if new: labs/<name>.toml's lab, else a guest of the boot settings) and returns once it is ready.
func Up(ctx context.Context, name string,
	restart *string, // for a new instance: no (default), on-failure (after a panic or a failed exit) or always
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.Up(ctx, cfg, name, value(restart, ""), os.Stdout)
}

// Ps lists the instances (state, uptime, memory, pids, forwards) and the guests simple-uml commands run in the foreground.
func Ps() error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.Ps(cfg, os.Stdout)
}

// Stop stops instance name; its disk stays for the next up.
func Stop(name string) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.StopInstance(cfg, name, os.Stdout)
}

// Logs prints instance name's console log (its last MiB or two), or a lab instance's guest's: <lab>/<guest>.
func Logs(ctx context.Context, name string,
	follow *bool, // keep printing what comes, until Ctrl-C
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.Logs(ctx, cfg, name, value(follow, false), os.Stdout)
}

// Console attaches this terminal to instance name's console, or a lab instance's guest's (<lab>/<guest>), until Ctrl-].
func Console(ctx context.Context, name string) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.Console(ctx, cfg, name, os.Stdin, os.Stdout)
}

// Reset puts instance name back to its pristine image (its disk's changes go), and starts it again if it ran.
func Reset(ctx context.Context, name string) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.Reset(ctx, cfg, name, os.Stdout)
}

// Rm stops instance name and removes it, disk and all.
func Rm(name string) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.Remove(cfg, name, os.Stdout)
}

// Image writes dist/'s kernel and boot.recipe's image as an OCI image (dist/<recipe>.oci and .oci.tar) that podman and Kubernetes run.
func Image(ctx context.Context,
	recipe *string, // the recipe whose image it holds (default: boot.recipe)
	series *string, // this series' kernel and images (dist/<series>/), or all (default: kernel.series)
) error {
	return eachSeries(series, func(cfg config.Config) error {
		cfg.Boot.Recipe = value(recipe, cfg.Boot.Recipe)
		_, err := pipeline.Image(ctx, cfg, os.Stdout)
		return err
	})
}

// Kube writes Kubernetes manifests that run boot.recipe's image (or with -lab a lab, a pod per guest) under the restricted Pod Security Standard.
func Kube(ctx context.Context,
	image *string, // the image reference the cluster pulls (default: the name `mage image` gives it, for podman kube play after podman load)
	lab *string, // a lab of labs/ to run, a workload per guest, its LANs carried between the pods over VXLAN
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	_, err = pipeline.Kube(ctx, cfg, value(lab, ""), value(image, ""), os.Stdout)
	return err
}

// Push sends `mage image`'s image of boot.recipe to release.registry under dist/release's tag (GITHUB_REPOSITORY, GITHUB_TOKEN).
func Push(ctx context.Context,
	recipe *string, // the recipe whose image it sends (default: boot.recipe)
	series *string, // this series' image, under its release's tag, or all (default: kernel.series)
) error {
	return eachSeries(series, func(cfg config.Config) error {
		cfg.Boot.Recipe = value(recipe, cfg.Boot.Recipe)
		_, err := pipeline.Push(ctx, cfg, os.Getenv, os.Stdout)
		return err
	})
}

// Pull fetches an OCI image by digest (registry/repository@sha256:...), checks every blob against it, and writes it to dist/ as image does.
func Pull(ctx context.Context, ref string) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	_, err = pipeline.Pull(ctx, cfg, ref, os.Getenv, os.Stdout)
	return err
}

// Debug boots dist/'s pair under gdb with the unstripped kernel, stopped at start_kernel.
func Debug(ctx context.Context) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.Debug(ctx, cfg, os.Stdin, os.Stdout, os.Stderr)
}

// Dist writes the release assets (kernel tarball, root filesystems, manifest.json, SHA256SUMS) to dist/release/.
func Dist(ctx context.Context,
	series *string, // a pinned series (into dist/<series>/release/, with dist/'s root filesystems), or all (default: kernel.series)
) error {
	return eachSeries(series, func(cfg config.Config) error {
		_, err := pipeline.Dist(ctx, cfg, os.Stdout)
		return err
	})
}

// Verify checks a release folder (dist/release) or a published release tag against its SHA256SUMS and manifest.
func Verify(ctx context.Context, dirOrTag string) error {
	var m *manifest.Manifest
	var err error
	if fi, statErr := os.Stat(dirOrTag); statErr == nil && fi.IsDir() {
		m, err = manifest.Verify(dirOrTag)
	} else {
		cfg, cfgErr := loadConfig()
		if cfgErr != nil {
			return cfgErr
		}
		m, err = pipeline.VerifyRelease(ctx, cfg, os.Getenv, dirOrTag, os.Stdout)
	}
	if err != nil {
		return err
	}
	fmt.Printf("%s: release %s verified (%d assets)\n", dirOrTag, m.Tag, len(m.Assets))
	return nil
}

// Release publishes dist/release as a GitHub release of GITHUB_REPOSITORY with GITHUB_TOKEN.
func Release(ctx context.Context,
	dryRun *bool, // print the plan, change nothing
	replace *bool, // replace assets that differ, also on a published release
	series *string, // publish dist/<series>/release, a release of its own, or all (default: kernel.series)
) error {
	opts := pipeline.PublishOptions{DryRun: value(dryRun, false), Replace: value(replace, false)}
	return eachSeries(series, func(cfg config.Config) error {
		_, err := pipeline.Publish(ctx, cfg, os.Getenv, opts, os.Stdout)
		return err
	})
}

// Fetch downloads, verifies and installs into dist/ a published release of GITHUB_REPOSITORY.
func Fetch(ctx context.Context,
	tag *string, // the release, e.g. v6.12.117-1 (default: the latest)
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	_, err = pipeline.FetchRelease(ctx, cfg, os.Getenv, value(tag, ""), os.Stdout)
	return err
}

// Bump pins a kernel.org release in kernel.lock, verified against kernel.org's signed checksums.
func Bump(ctx context.Context,
	to *string, // an exact version, e.g. 6.12.120 (default: the newest of the series)
	dryRun *bool, // say what would change, change nothing
	allowEOL *bool, // accept a series kernel.org marks end of life
	series *string, // another series to bump, or pin beside the default (its own table in kernel.lock), or all (default: kernel.series)
) error {
	opts := pipeline.BumpOptions{Version: value(to, ""), DryRun: value(dryRun, false), AllowEOL: value(allowEOL, false)}
	return eachSeries(series, func(cfg config.Config) error {
		_, err := pipeline.Bump(ctx, cfg, opts, os.Stdout)
		return err
	})
}

// BumpPR runs bump and proposes a changed kernel.lock as the one open bump pull request (GITHUB_REPOSITORY, GITHUB_TOKEN).
func BumpPR(ctx context.Context,
	workflow *string, // the CI workflow to start on the bump branch (default: ci.yml; empty: none)
	allowEOL *bool, // accept a series kernel.org marks end of life
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	opts := pipeline.BumpPROptions{Workflow: value(workflow, "ci.yml"), AllowEOL: value(allowEOL, false)}
	_, err = pipeline.BumpPR(ctx, cfg, os.Getenv, opts, os.Stdout)
	return err
}

// Repro builds kernel, rootfs and dist twice in separate folders and fails unless the two releases are the same bytes.
func Repro(ctx context.Context) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	res, err := pipeline.Repro(ctx, cfg, pipeline.ReproOptions{}, os.Stdout)
	if err == nil && res.Diff != nil {
		err = fmt.Errorf("not reproducible: %s", res.Diff)
	}
	return err
}

// Doctor checks that the host has every tool the targets need and says how to install what is missing.
func Doctor() error {
	return pipeline.Doctor(os.Stdout)
}

// eachSeries runs do with the configuration of each series -series names: kernel.series (whose
// kernel dist/ itself holds, and which boot, lab and kunit use) when it is not given, every series
// kernel.lock pins for "all", one after another.
func eachSeries(series *string, do func(config.Config) error) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	all, err := cfg.Select(value(series, ""))
	if err != nil {
		return err
	}
	for _, c := range all {
		if len(all) > 1 {
			fmt.Printf("== series %s (%s)\n", c.Kernel.Series, c.Paths.Dist)
		}
		if err := do(c); err != nil {
			return fmt.Errorf("series %s: %w", c.Kernel.Series, err)
		}
	}
	return nil
}

// value is a flag's value, or def when it was not given.
func value[T any](flag *T, def T) T {
	if flag == nil {
		return def
	}
	return *flag
}

// Version prints simple-uml's version and commit, the Go and mage that built it, and the pinned kernel.
func Version(ctx context.Context) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.Version(ctx, cfg, os.Stdout)
}

// Cache shows what the cache holds and how much space it takes; -clean empties it once nothing runs.
func Cache(ctx context.Context,
	clean *bool, // remove everything in the cache (it can all be made again); refused while a guest uses it
	keepDownloads *bool, // with -clean: keep the verified downloads (kernel tarballs, packages)
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.Cache(ctx, cfg, value(clean, false), value(keepDownloads, false), os.Stdout)
}

// Settings lists the settings (those -target=<name> reads) with their variables, defaults and the values in use.
func Settings(
	target *string, // a target whose settings to list, as `go tool mage -l` names it (default: all)
) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	return pipeline.Settings(cfg, value(target, ""), os.Getenv, os.Stdout)
}
