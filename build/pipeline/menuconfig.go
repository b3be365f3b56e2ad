package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/kbuild"
	"github.com/simple-uml/simple-uml/build/kconf"
)

// MenuconfigFragment is where options changed in menuconfig go when no fragment sets them yet.
const MenuconfigFragment = "90-menuconfig.config"

// Menuconfig configures the tree as `mage kernel` would, opens the kernel's menuconfig on it, and
// writes the options the user changed back into the fragments. It returns the fragment files written.
func Menuconfig(ctx context.Context, cfg config.Config, stdin io.Reader, stdout, w io.Writer) ([]string, error) {
	if err := host.Check(host.Kernel, host.Menuconfig); err != nil {
		return nil, err
	}
	opts, closeLog, err := configuredTree(ctx, cfg, w)
	if err != nil {
		return nil, err
	}
	defer closeLog()
	before, err := kconf.ParseFile(filepath.Join(opts.Out, ".config"))
	if err != nil {
		return nil, err
	}
	if err := kbuild.Menuconfig(ctx, opts.Options, stdin, stdout); err != nil {
		return nil, err
	}
	after, err := kconf.ParseFile(filepath.Join(opts.Out, ".config"))
	if err != nil {
		return nil, err
	}
	changed := kconf.Diff(before, after)
	if len(changed) == 0 {
		fmt.Fprintln(w, "menuconfig: nothing changed")
		return nil, nil
	}
	frags, err := kconf.LoadFragments(cfg.Paths.Fragments)
	if err != nil {
		return nil, err
	}
	files, err := kconf.WriteBack(frags, changed, filepath.Join(cfg.Paths.Fragments, MenuconfigFragment))
	if err != nil {
		return files, err
	}
	fmt.Fprintf(w, "menuconfig: %d option(s) changed, written to %v; `go tool mage kernel` builds with them\n", len(changed), files)
	return files, nil
}

// configuredTree does everything of Kernel up to and including configuration.
func configuredTree(ctx context.Context, cfg config.Config, w io.Writer) (configuredOptions, func(), error) {
	cache := &fetch.Cache{Dir: filepath.Join(cfg.Paths.Cache, "downloads"), Log: w}
	src, err := resolveSource(ctx, cfg, cache, w)
	if err != nil {
		return configuredOptions{}, nil, err
	}
	in, err := gatherInputs(ctx, cfg, src)
	if err != nil {
		return configuredOptions{}, nil, err
	}
	return configure(ctx, cfg, cache, src, in, w)
}

// configuredOptions are build options for a configured tree, with the tree's version.
type configuredOptions struct {
	kbuild.Options
	Version string
}

// configure fetches, unpacks and patches the source (or takes the cached tree) and configures the
// build directory.
func configure(ctx context.Context, cfg config.Config, cache *fetch.Cache, src kernelSource, in kernelInputs, w io.Writer) (configuredOptions, func(), error) {
	tarball, err := src.fetch(ctx, cache)
	if err != nil {
		return configuredOptions{}, nil, err
	}
	tree, err := preparedTree(ctx, cfg, tarball, in, w)
	if err != nil {
		return configuredOptions{}, nil, err
	}
	opts, closeLog, err := buildOptions(cfg, tree, in.buildDir(cfg), w)
	if err != nil {
		return configuredOptions{}, nil, err
	}
	if _, err := kbuild.Configure(ctx, opts, in.requested); err != nil {
		closeLog()
		return configuredOptions{}, nil, fmt.Errorf("configure kernel %s: %w", tree.Version, err)
	}
	return configuredOptions{Options: opts, Version: tree.Version}, closeLog, nil
}

// Doctor checks the host for every tool the targets need and prints the result.
func Doctor(w io.Writer) error {
	err := host.Check(host.Kernel, host.Menuconfig, host.Image)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "all host tools present: make, gcc, binutils, flex, bison, bc, perl, xz, ncurses (menuconfig), mke2fs")
	if _, err := os.Stat("/usr/bin/fakeroot"); err != nil {
		fmt.Fprintln(w, "note: fakeroot is not installed; later stages use it for rootless image ownership (apt-get install fakeroot)")
	}
	return nil
}
