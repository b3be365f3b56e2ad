//go:build mage

// simple-uml builds User-Mode Linux: a kernel from kernel.org sources, run as an ordinary process.
// Settings: simple-uml.toml, kernel.lock and rootfs-recipes/, each key overridable by a SUML_* variable (see README.md).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/pipeline"
)

// Kernel downloads, verifies, patches, configures and builds the pinned kernel into dist/ (SUML_* overrides).
func Kernel(ctx context.Context) error {
	cfg, err := config.Load(".", nil)
	if err != nil {
		return err
	}
	_, err = pipeline.Kernel(ctx, cfg, os.Stdout)
	return err
}

// Menuconfig opens the kernel's menuconfig and writes what you changed back into kconfig/ fragments.
func Menuconfig(ctx context.Context) error {
	cfg, err := config.Load(".", nil)
	if err != nil {
		return err
	}
	_, err = pipeline.Menuconfig(ctx, cfg, os.Stdin, os.Stdout, os.Stdout)
	return err
}

// Rootfs assembles the default root filesystem recipe (SUML_ROOTFS_RECIPE) into dist/ without root rights.
func Rootfs(ctx context.Context) error {
	return rootfs(ctx, "")
}

// RootfsRecipe assembles the named recipe from rootfs-recipes/ into dist/ (`rootfsRecipe void-musl`).
func RootfsRecipe(ctx context.Context, recipe string) error {
	return rootfs(ctx, recipe)
}

func rootfs(ctx context.Context, recipe string) error {
	cfg, err := config.Load(".", nil)
	if err != nil {
		return err
	}
	_, err = pipeline.Rootfs(ctx, cfg, recipe, os.Stdout)
	return err
}

// Boot boots dist/'s kernel and root filesystem with the console on this terminal (SUML_BOOT_* options).
func Boot(ctx context.Context) error {
	cfg, err := config.Load(".", nil)
	if err != nil {
		return err
	}
	return pipeline.Boot(ctx, cfg, os.Stdin, os.Stdout, os.Stderr)
}

// Test boots dist/'s pair without a person, runs checks inside the guest and fails if any does not pass.
func Test(ctx context.Context) error {
	cfg, err := config.Load(".", nil)
	if err != nil {
		return err
	}
	_, err = pipeline.GuestTest(ctx, cfg, os.Stdout)
	return err
}

// Debug boots dist/'s pair under gdb with the unstripped kernel, stopped at start_kernel.
func Debug(ctx context.Context) error {
	cfg, err := config.Load(".", nil)
	if err != nil {
		return err
	}
	return pipeline.Debug(ctx, cfg, os.Stdin, os.Stdout, os.Stderr)
}

// Dist writes the release assets (kernel tarball, root filesystems, manifest.json, SHA256SUMS) to dist/release/.
func Dist(ctx context.Context) error {
	cfg, err := config.Load(".", nil)
	if err != nil {
		return err
	}
	_, err = pipeline.Dist(ctx, cfg, os.Stdout)
	return err
}

// Verify checks a release folder (dist/release) or a published release tag against its SHA256SUMS and manifest.
func Verify(ctx context.Context, dirOrTag string) error {
	var m *manifest.Manifest
	var err error
	if fi, statErr := os.Stat(dirOrTag); statErr == nil && fi.IsDir() {
		m, err = manifest.Verify(dirOrTag)
	} else {
		cfg, cfgErr := config.Load(".", nil)
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

// Release publishes dist/release as a GitHub release (GITHUB_REPOSITORY, GITHUB_TOKEN; SUML_RELEASE_DRY_RUN=1, SUML_RELEASE_REPLACE=1).
func Release(ctx context.Context) error {
	cfg, err := config.Load(".", nil)
	if err != nil {
		return err
	}
	opts := pipeline.PublishOptions{DryRun: os.Getenv("SUML_RELEASE_DRY_RUN") == "1", Replace: os.Getenv("SUML_RELEASE_REPLACE") == "1"}
	_, err = pipeline.Publish(ctx, cfg, os.Getenv, opts, os.Stdout)
	return err
}

// Fetch downloads, verifies and installs into dist/ the latest published release of GITHUB_REPOSITORY (or SUML_FETCH_TAG).
func Fetch(ctx context.Context) error {
	return fetchRelease(ctx, os.Getenv("SUML_FETCH_TAG"))
}

// FetchTag downloads, verifies and installs into dist/ the named release (`fetchTag v6.12.117-1`).
func FetchTag(ctx context.Context, tag string) error {
	return fetchRelease(ctx, tag)
}

func fetchRelease(ctx context.Context, tag string) error {
	cfg, err := config.Load(".", nil)
	if err != nil {
		return err
	}
	_, err = pipeline.FetchRelease(ctx, cfg, os.Getenv, tag, os.Stdout)
	return err
}

// Bump pins the newest kernel.org release of kernel.series in kernel.lock, verified (SUML_BUMP_DRY_RUN=1, SUML_BUMP_ALLOW_EOL=1).
func Bump(ctx context.Context) error {
	return bump(ctx, "")
}

// BumpTo pins an exact kernel version in kernel.lock, verified against kernel.org's signed checksums (`bumpTo 6.12.120`).
func BumpTo(ctx context.Context, version string) error {
	return bump(ctx, version)
}

func bump(ctx context.Context, version string) error {
	cfg, err := config.Load(".", nil)
	if err != nil {
		return err
	}
	opts := pipeline.BumpOptions{Version: version, DryRun: os.Getenv("SUML_BUMP_DRY_RUN") == "1", AllowEOL: os.Getenv("SUML_BUMP_ALLOW_EOL") == "1"}
	_, err = pipeline.Bump(ctx, cfg, opts, os.Stdout)
	return err
}

// BumpPR runs bump and proposes a changed kernel.lock as the one open bump pull request (GITHUB_REPOSITORY, GITHUB_TOKEN; SUML_BUMP_WORKFLOW, default ci.yml).
func BumpPR(ctx context.Context) error {
	cfg, err := config.Load(".", nil)
	if err != nil {
		return err
	}
	workflow, ok := os.LookupEnv("SUML_BUMP_WORKFLOW")
	if !ok {
		workflow = "ci.yml"
	}
	opts := pipeline.BumpPROptions{Workflow: workflow, AllowEOL: os.Getenv("SUML_BUMP_ALLOW_EOL") == "1"}
	_, err = pipeline.BumpPR(ctx, cfg, os.Getenv, opts, os.Stdout)
	return err
}

// Repro builds kernel, rootfs and dist twice in separate folders and fails unless the two releases are the same bytes.
func Repro(ctx context.Context) error {
	cfg, err := config.Load(".", nil)
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
