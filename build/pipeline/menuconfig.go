package pipeline

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/kbuild"
	"github.com/simple-uml/simple-uml/build/kconf"
	"github.com/simple-uml/simple-uml/build/kernel"
)

// MenuconfigFragment is where options changed in menuconfig go when no fragment sets them yet.
const MenuconfigFragment = "90-menuconfig.config"

// Menuconfig configures the tree as `mage kernel` would, opens the kernel's menuconfig on it, and
// writes the options the user changed back into the fragments. It returns the fragment files written.
func Menuconfig(ctx context.Context, cfg config.Config, stdin io.Reader, stdout, w io.Writer) ([]string, error) {
	if err := host.Check(host.Kernel, host.Menuconfig); err != nil {
		return nil, err
	}
	ctx, run, err := startRun(ctx, cfg, "mage menuconfig", w)
	if err != nil {
		return nil, err
	}
	defer run.end()
	opts, err := configuredKernel(ctx, cfg, w)
	if err != nil {
		return nil, err
	}
	defer opts.Close()
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
	rel := make([]string, len(files))
	for i, f := range files {
		if r, err := filepath.Rel(cfg.Root, f); err == nil {
			rel[i] = r
		} else {
			rel[i] = f
		}
	}
	fmt.Fprintf(w, "menuconfig: %d option(s) changed, written to %s; `go tool mage kernel` builds with them\n", len(changed), strings.Join(rel, ", "))
	return files, nil
}

// configuredKernel does Kernel's steps up to and including configuration, for the source Kernel
// builds.
func configuredKernel(ctx context.Context, cfg config.Config, w io.Writer) (*kernel.Build, error) {
	b := &kernelBuild{cfg: cfg, w: w, cache: &fetch.Cache{Dir: cfg.Paths.Downloads, Log: w}}
	var err error
	if b.in, err = kernel.Plan(ctx, cfg, b.cache, w); err != nil {
		return nil, err
	}
	err = runSteps(ctx, newStepTimer(), step{name: "source", run: b.source}, step{name: "configure", run: b.configure})
	return b.configured, err
}

// Doctor says where each tool the targets need is, and fails naming the packages of the missing ones
// (gdb, which only `mage debug` needs, is reported but not required).
func Doctor(w io.Writer) error {
	for _, line := range host.Where(host.Kernel, host.Menuconfig, host.Image, host.Debug) {
		fmt.Fprintln(w, "  "+line)
	}
	if err := host.Check(host.Kernel, host.Menuconfig, host.Image); err != nil {
		return err
	}
	fmt.Fprintln(w, "all host tools the targets need are present")
	return nil
}
