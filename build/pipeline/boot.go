package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/ktap"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/rootfs"
	"github.com/simple-uml/simple-uml/build/uml"
	"github.com/simple-uml/simple-uml/build/usernet"
)

// guest is what a boot of dist/'s pair needs: the options and the records of what it boots.
type guest struct {
	opts   uml.Options
	kernel *manifest.KernelRecord
	rootfs *manifest.RootfsRecord
	recipe *rootfs.Recipe
	// throwaway is the folder of the temporary COW file, removed after the boot; nil when the user
	// keeps a COW file.
	throwaway *files.PrivateDir
}

// prepareGuest reads dist/'s kernel and image records and turns the [boot] settings into options.
func prepareGuest(cfg config.Config, w io.Writer) (*guest, error) {
	linux := filepath.Join(cfg.Paths.Dist, kernel.LinuxName)
	image, _, _ := manifest.RootfsFiles(cfg.ImagesDir(), cfg.Boot.Recipe)
	for _, p := range []string{linux, image} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s is missing: build the pair with `go tool mage kernel rootfs` (recipe %q), or download a published one with `go tool mage fetch`: %w", p, cfg.Boot.Recipe, err)
		}
	}
	g := &guest{}
	var err error
	if g.kernel, err = manifest.ReadKernelRecord(cfg.Paths.Dist); err != nil {
		return nil, fmt.Errorf("kernel record: %w", err)
	}
	if image, g.rootfs, g.recipe, err = distImage(cfg, cfg.Boot.Recipe); err != nil {
		return nil, err
	}
	g.opts = guestOptions(cfg, linux)
	// The doors a person opens for the boots they start: kernel arguments and a shared host folder.
	g.opts.Image, g.opts.Args, g.opts.Hostfs = image, strings.Fields(cfg.Boot.Args), cfg.Boot.Hostfs
	if g.opts.Net, err = bootNet(cfg, g.recipe.Hostname); err != nil {
		return nil, err
	}
	g.opts.COW = cfg.Boot.COW
	if g.opts.COW == "" {
		// A fresh copy-on-write file per boot, in a folder of its own (the sandbox lets the kernel
		// write that file alone): the image is never written, and guests can share it.
		run := runFolder(cfg)
		if err := os.MkdirAll(run, 0o755); err != nil {
			return nil, err
		}
		if g.throwaway, err = files.NewPrivateDir(run, cfg.Boot.Recipe+"-cow-", nil); err != nil {
			return nil, err
		}
		g.opts.COW = filepath.Join(g.throwaway.Path, "guest.cow")
	}
	return g, nil
}

// guestOptions is where the settings become a boot's uml.Options, for every boot simple-uml makes
// of a kernel (boot, test, debug, kunit, labs, the configure boot of rootfs): the kernel, boot.mem,
// boot.sandbox and boot.timeout. What else a boot needs (an image, a network, kernel arguments, a
// host folder) each adds for itself.
func guestOptions(cfg config.Config, kernel string) uml.Options {
	return uml.Options{Kernel: kernel, Mem: cfg.Boot.Mem, Sandbox: uml.Sandbox(cfg.Boot.Sandbox), Timeout: time.Duration(cfg.Boot.Timeout) * time.Second}
}

// distImage is what a guest of recipe boots from dist/: the image, its record, and the recipe: its
// file when there is one, else what the record carries (a fetched release whose recipe this
// checkout does not have).
func distImage(cfg config.Config, recipe string) (string, *manifest.RootfsRecord, *rootfs.Recipe, error) {
	image, _, recordPath := manifest.RootfsFiles(cfg.ImagesDir(), recipe)
	rec := &manifest.RootfsRecord{}
	if err := files.ReadJSON(recordPath, rec); err != nil {
		return "", nil, nil, fmt.Errorf("no root filesystem %q in %s (build it with `go tool mage rootfs -recipe=%s`): %w", recipe, cfg.ImagesDir(), recipe, err)
	}
	r, err := rootfs.LoadRecipe(cfg.Paths.Recipes, recipe)
	if err != nil && errors.Is(err, fs.ErrNotExist) && rec.Boot != nil {
		r, err = &rootfs.Recipe{Name: rec.Recipe, Path: "the record of " + rec.Recipe + " (its recipe file is not here)",
			Arch: rec.Arch, Hostname: rec.Boot.Hostname, RootPassword: rec.Boot.RootPassword}, nil
	}
	return image, rec, r, err
}

// runFolder holds what boots and labs leave while they run, in the cache: throwaway COW files (each
// in a folder of its own, the only one of them a guest's sandbox may write), console logs, labs' run
// folders and the records of running labs.
func runFolder(cfg config.Config) string { return filepath.Join(cfg.Paths.Cache, "run") }

func (g *guest) cleanup() {
	if g.throwaway != nil {
		g.throwaway.Remove()
	}
}

// bootNet turns boot.net, boot.host_access and boot.forward into the guest's network.
func bootNet(cfg config.Config, hostname string) (*uml.Net, error) {
	forwards, err := usernet.ParseForwards(cfg.Boot.Forward)
	if err != nil {
		return nil, err
	}
	switch cfg.Boot.Net {
	case "none", "":
		if len(forwards) > 0 || cfg.Boot.HostAccess {
			return nil, fmt.Errorf("boot.forward and boot.host_access need a network: set boot.net = %q", uml.UserNet)
		}
		return nil, nil
	case uml.UserNet:
		return &uml.Net{Transport: uml.UserNet, HostAccess: cfg.Boot.HostAccess, Forwards: forwards, Hostname: hostname}, nil
	}
	// A UML transport of the user's own (config checked its spelling).
	return &uml.Net{Transport: strings.TrimPrefix(cfg.Boot.Net, config.RawNetPrefix), HostAccess: cfg.Boot.HostAccess, Forwards: forwards}, nil
}

// Boot boots dist/'s kernel and image with the console on the terminal, as an ordinary user.
func Boot(ctx context.Context, cfg config.Config, stdin *os.File, stdout io.Writer, w io.Writer) error {
	g, err := prepareGuest(cfg, w)
	if err != nil {
		return err
	}
	defer g.cleanup()
	describeBoot(w, g)
	return uml.Interactive(ctx, g.opts, stdin, stdout)
}

// describeBoot is the banner of a boot: what it boots, where its writes go, and what of the host the
// guest reaches.
func describeBoot(w io.Writer, g *guest) {
	fmt.Fprintf(w, "booting linux %s with %s (%d packages)\n", g.kernel.Version, g.opts.Image, len(g.rootfs.Packages))
	if g.throwaway != nil {
		fmt.Fprintf(w, "  writes go to a throwaway copy-on-write file; set SUML_BOOT_COW=<file> to keep them\n")
	} else {
		fmt.Fprintf(w, "  writes go to %s (kept)\n", g.opts.COW)
	}
	uml.DescribeDoors(w, g.opts)
	fmt.Fprintf(w, "  log in as root; `poweroff` ends the guest\n")
}

// GuestTest boots dist/'s pair without a person: it waits for the ready marker, logs in on the console as
// root, runs the checks and test.scripts, writes JSON and JUnit reports, powers off, and fails with the console's tail and a reason on a timeout, a
// panic or a failed check. The image is not changed.
func GuestTest(ctx context.Context, cfg config.Config, w io.Writer) (uml.TestReport, error) {
	g, err := prepareGuest(cfg, w)
	if err != nil {
		return uml.TestReport{}, err
	}
	defer g.cleanup()
	report := uml.TestReport{Version: g.kernel.Version, Image: g.opts.Image}
	timeout := time.Duration(cfg.Boot.Timeout) * time.Second

	var service *uml.HostService
	if g.opts.Net != nil && g.opts.Net.Transport == uml.UserNet {
		if service, err = uml.StartHostService(); err != nil {
			return report, err
		}
		defer service.Close()
	}
	logPath := filepath.Join(runFolder(cfg), cfg.Boot.Recipe+"-test-console.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return report, err
	}
	defer logFile.Close()
	g.opts.Console = uml.ConsoleLog(logFile)
	fmt.Fprintf(w, "test: booting linux %s with %s; console log: %s\n", g.kernel.Version, g.opts.Image, logPath)
	vm, err := uml.Start(ctx, g.opts)
	if err != nil {
		return report, err
	}
	defer vm.Stop()
	fail := func(err error) (uml.TestReport, error) {
		return report, fmt.Errorf("mage test: %w\n  full console: %s", err, logPath)
	}
	if _, err := vm.Expect(ctx, cfg.Boot.Ready, timeout); err != nil {
		return fail(err)
	}
	report.Ready = vm.Elapsed()
	fmt.Fprintf(w, "ready (%q) %s after the kernel started\n", cfg.Boot.Ready, report.Ready.Round(time.Millisecond))
	if err := vm.LoginRoot(ctx, g.recipe.RootPassword, timeout); err != nil {
		return fail(fmt.Errorf("%w (recipe %s)", err, g.recipe.Path))
	}
	checks := uml.BootChecks(g.kernel.Version, g.rootfs.Pkgvers(), service, g.opts.Net != nil && g.opts.Net.HostAccess)
	if report.Checks, err = vm.RunChecks(ctx, checks, timeout, w); err != nil {
		return fail(err)
	}
	if report.Scripts, err = vm.RunScripts(ctx, cfg.Test.Scripts, timeout, w); err != nil {
		return fail(err)
	}
	jsonReport, junitReport, err := ktap.WriteReports(filepath.Join(cfg.Paths.Dist, "test-reports"), cfg.Boot.Recipe, report.Tree("mage test "+cfg.Boot.Recipe))
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(w, "reports: %s, %s\n", jsonReport, junitReport)
	if err := vm.Send("poweroff\n"); err != nil {
		return fail(err)
	}
	if err := vm.Wait(timeout); err != nil {
		return fail(fmt.Errorf("power-off: %w", err))
	}
	if failed := report.Failed(); len(failed) > 0 {
		return fail(fmt.Errorf("%d check(s) failed:\n    %s\n%w", len(failed), strings.Join(failed, "\n    "),
			&uml.Error{Reason: "failed checks", Console: vm.Console()}))
	}
	fmt.Fprintf(w, "test passed: %d checks, ready in %s\n", len(report.Checks), report.Ready.Round(time.Millisecond))
	return report, nil
}

// Debug boots dist/'s pair under gdb with the unstripped kernel (dist/linux-debug; its debug info
// names kbuild.SourceRoot, which gdb maps to the source tree in the cache), stopping in
// start_kernel. gdbArgs replace the interactive session's commands (a script, -batch) when given.
func Debug(ctx context.Context, cfg config.Config, stdin *os.File, stdout io.Writer, w io.Writer, gdbArgs ...string) error {
	if err := host.Check(host.Debug); err != nil {
		return err
	}
	vmlinux := filepath.Join(cfg.Paths.Dist, kernel.DebugName)
	if _, err := os.Stat(vmlinux); err != nil {
		return fmt.Errorf("the unstripped kernel %s is missing: build with `go tool mage kernel`: %w", vmlinux, err)
	}
	g, err := prepareGuest(cfg, w)
	if err != nil {
		return err
	}
	defer g.cleanup()
	g.opts.Kernel = vmlinux
	if len(gdbArgs) == 0 {
		gdbArgs = []string{"-ex", "break start_kernel", "-ex", "run"}
	}
	return uml.Debug(ctx, g.opts, append(kernel.GDBSourceArgs(vmlinux), gdbArgs...), stdin, stdout)
}
