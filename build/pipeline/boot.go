package pipeline

import (
	"context"
	"encoding/json"
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
	"github.com/simple-uml/simple-uml/build/kbuild"
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
	image, _, recordPath := manifest.RootfsFiles(cfg.ImagesDir(), cfg.Boot.Recipe)
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
	data, err := os.ReadFile(recordPath)
	if err != nil {
		return nil, fmt.Errorf("root filesystem record: %w", err)
	}
	g.rootfs = &manifest.RootfsRecord{}
	if err := json.Unmarshal(data, g.rootfs); err != nil {
		return nil, fmt.Errorf("%s: %w", recordPath, err)
	}
	if g.recipe, err = bootRecipe(cfg, cfg.Boot.Recipe, g.rootfs); err != nil {
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
		// write that folder, not its neighbours'): the image is never written, and guests can share it.
		run := filepath.Join(cfg.Paths.Cache, "run")
		if err := os.MkdirAll(run, 0o755); err != nil {
			return nil, err
		}
		if g.throwaway, err = files.NewPrivateDir(run, cfg.Boot.Recipe+"-cow-"); err != nil {
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

// bootRecipe is the recipe of the image to boot: its file when there is one, else what the image's
// record carries (a fetched release whose recipe this checkout does not have).
func bootRecipe(cfg config.Config, name string, rec *manifest.RootfsRecord) (*rootfs.Recipe, error) {
	r, err := rootfs.LoadRecipe(cfg.Paths.Recipes, name)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || rec.Boot == nil {
		return r, err
	}
	return &rootfs.Recipe{Name: rec.Recipe, Path: "the record of " + rec.Recipe + " (its recipe file is not here)",
		Arch: rec.Arch, Hostname: rec.Boot.Hostname, RootPassword: rec.Boot.RootPassword}, nil
}

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

func describeBoot(w io.Writer, g *guest) {
	fmt.Fprintf(w, "booting linux %s with %s (%d packages)\n", g.kernel.Version, g.opts.Image, len(g.rootfs.Packages))
	if g.throwaway != nil {
		fmt.Fprintf(w, "  writes go to a throwaway copy-on-write file; set SUML_BOOT_COW=<file> to keep them\n")
	} else {
		fmt.Fprintf(w, "  writes go to %s (kept)\n", g.opts.COW)
	}
	// What of the host the guest can reach, said every time: doors are opened only by settings.
	switch n := g.opts.Net; {
	case n == nil:
		fmt.Fprintf(w, "  network: none (boot.net = %q gives the guest one)\n", uml.UserNet)
	case n.Transport == uml.UserNet:
		fmt.Fprintf(w, "  network: user-mode, guest %s, gateway and DNS %s\n", usernet.GuestIP, usernet.GatewayIP)
		if n.HostAccess {
			fmt.Fprintf(w, "  host services: OPEN: the host's loopback services are reachable as %s (boot.host_access)\n", usernet.GatewayIP)
		} else {
			fmt.Fprintf(w, "  host services: closed: the guest reaches neither the host's loopback nor its addresses (boot.host_access opens them)\n")
		}
		for _, f := range n.Forwards {
			fmt.Fprintf(w, "  forward: host 127.0.0.1:%d -> guest port %d\n", f.Host, f.Guest)
		}
	default:
		fmt.Fprintf(w, "  network: OPEN: %s, a device of this host (the guest is on its network)\n", n.Transport)
	}
	if g.opts.Hostfs != "" {
		fmt.Fprintf(w, "  host files: OPEN: %s is shared read-write (in the guest: mount -t hostfs none /mnt)\n", g.opts.Hostfs)
	} else {
		fmt.Fprintf(w, "  host files: none shared (boot.hostfs / SUML_BOOT_HOSTFS shares one folder)\n")
	}
	fmt.Fprintf(w, "  sandbox: %s\n", uml.DescribeSandbox(g.opts))
	fmt.Fprintf(w, "  log in as root; `poweroff` ends the guest\n")
}

// GuestTestReport is what GuestTest found.
type GuestTestReport struct {
	Version string            `json:"version"`
	Image   string            `json:"image"`
	Ready   time.Duration     `json:"ready_ns"` // kernel start to the ready marker
	Checks  []uml.CheckResult `json:"checks"`
	Scripts []*ktap.Test      `json:"scripts,omitempty"` // test.scripts' results
}

// Failed lists the checks and scripts that did not pass.
func (r GuestTestReport) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c.Name+": "+c.Detail)
		}
	}
	for _, s := range r.Scripts {
		if s.Status != ktap.Pass {
			sum := ktap.Summarize(s)
			out = append(out, fmt.Sprintf("script %s: %d of %d tests failed %s", s.Name, sum.Failed+sum.Errors, sum.Tests, s.Diagnostic))
		}
	}
	return out
}

// GuestTest boots dist/'s pair without a person: it waits for the ready marker, logs in on the console as
// root, runs the checks and test.scripts, writes JSON and JUnit reports, powers off, and fails with the console's tail and a reason on a timeout, a
// panic or a failed check. The image is not changed.
func GuestTest(ctx context.Context, cfg config.Config, w io.Writer) (GuestTestReport, error) {
	g, err := prepareGuest(cfg, w)
	if err != nil {
		return GuestTestReport{}, err
	}
	defer g.cleanup()
	report := GuestTestReport{Version: g.kernel.Version, Image: g.opts.Image}
	timeout := time.Duration(cfg.Boot.Timeout) * time.Second

	var service *uml.HostService
	if g.opts.Net != nil && g.opts.Net.Transport == uml.UserNet {
		if service, err = uml.StartHostService(); err != nil {
			return report, err
		}
		defer service.Close()
	}
	logPath := filepath.Join(cfg.Paths.Cache, "run", cfg.Boot.Recipe+"-test-console.log")
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
	fail := func(err error) (GuestTestReport, error) {
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
	if report.Checks, err = vm.RunChecks(ctx, guestChecks(g, service), timeout, w); err != nil {
		return fail(err)
	}
	if report.Scripts, err = vm.RunScripts(ctx, cfg.Test.Scripts, timeout, w); err != nil {
		return fail(err)
	}
	jsonReport, junitReport, err := ktap.WriteReports(filepath.Join(cfg.Paths.Dist, "test-reports"), cfg.Boot.Recipe, testReport(cfg, report.Checks, report.Scripts))
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

// guestChecks are the checks of `mage test`, as shell commands for the guest's console.
func guestChecks(g *guest, service *uml.HostService) []uml.Check {
	var pkgvers []string
	for _, p := range g.rootfs.Packages {
		pkgvers = append(pkgvers, p.Pkgver)
	}
	checks := []uml.Check{
		{Name: "kernel release", Command: "uname -r", Judge: uml.Equals(g.kernel.Version)},
		{Name: "root file system", Command: `awk '$2=="/"{print $3}' /proc/mounts | tail -n 1`, Judge: uml.Equals("ext4")},
		{Name: "root writable", Command: "touch /.suml-test && rm /.suml-test && echo writable", Judge: uml.Equals("writable")},
		uml.XbpsDatabaseCheck(pkgvers),
		uml.NoModulesCheck(),
	}
	if service != nil {
		checks = append(checks, service.Check(g.opts.Net.HostAccess))
	}
	return checks
}

// Debug boots dist/'s pair under gdb with the unstripped kernel (dist/linux-debug; its debug info
// names kbuild.SourceRoot, which gdb maps to the source tree in the cache) and the signal settings UML needs (it uses SIGSEGV and SIGUSR1 itself), stopping in start_kernel. gdbArgs
// replace the interactive session's commands (a script, -batch) when given.
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
	args := []string{"gdb", "-q",
		"-ex", "handle SIGSEGV pass nostop noprint",
		"-ex", "handle SIGUSR1 pass nostop noprint",
	}
	args = append(args, gdbSourceArgs(vmlinux)...)
	if len(gdbArgs) > 0 {
		args = append(args, gdbArgs...)
	} else {
		args = append(args, "-ex", "break start_kernel", "-ex", "run")
	}
	return uml.Debug(ctx, g.opts, args, stdin, stdout)
}

// gdbSourceArgs tells gdb where the source tree of an unstripped kernel is on this machine: its debug
// information names kbuild.SourceRoot, and the build wrote the real folder beside it.
func gdbSourceArgs(vmlinux string) []string {
	src, err := os.ReadFile(vmlinux + ".source")
	if err != nil {
		return nil
	}
	return []string{"-ex", "set substitute-path " + kbuild.SourceRoot + " " + strings.TrimSpace(string(src))}
}
