// Package kbuild runs the kernel's own build system for ARCH=um: out of tree (O=), in a reproducible
// environment (fixed build timestamp, user and host), with the full log in a file and the lines that
// explain a failure in the error.
package kbuild

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/kconf"
	"github.com/simple-uml/simple-uml/build/run"
)

// BuildUser and BuildHost replace the builder's names in the kernel's version string.
const (
	BuildUser = "simple-uml"
	BuildHost = "simple-uml"
	// SourceRoot is where debug information and __FILE__ say the source and build folders are, so that
	// the kernel does not depend on where the cache is (Documentation/kbuild/reproducible-builds.rst).
	SourceRoot = "/usr/src/linux"
)

// Options describes one out-of-tree kernel build.
type Options struct {
	Src       string    // patched source tree; never written to
	Out       string    // O= build directory; created if missing, reused for incremental builds
	Subarch   string    // SUBARCH, e.g. x86_64
	Jobs      int       // make -j, at least 1
	CCWrapper string    // prepended to the compiler (ccache, distcc...); empty for none
	Timestamp time.Time // KBUILD_BUILD_TIMESTAMP: from the release, so that rebuilds are identical
	Log       io.Writer // receives all make output; nil discards it
	Echo      io.Writer // where commands are printed before they run; nil means stderr

	// CCacheRemote is ccache's remote storage (CCACHE_REMOTE_STORAGE): where objects are shared
	// between machines. It changes no output, so it is not part of Env.
	CCacheRemote string
}

// LogName is the file in Out that holds the output of the last build.
const LogName = "simple-uml-build.log"

// Env is the environment that makes builds reproducible.
func (o Options) Env() []string {
	env := []string{
		"KBUILD_BUILD_TIMESTAMP=" + o.Timestamp.UTC().Format(time.RFC1123Z),
		"KBUILD_BUILD_USER=" + BuildUser,
		"KBUILD_BUILD_HOST=" + BuildHost,
		"KBUILD_BUILD_VERSION=1", // not the count of builds in this build folder
		"LC_ALL=C",
		"TZ=UTC",
	}
	if strings.HasPrefix(o.CCWrapper, "distcc") {
		// distcc runs gcc as x86_64-linux-gnu-gcc, the name the kernel's version banner (and .config's
		// CONFIG_CC_VERSION_TEXT) then shows: the same compiler by its plain name keeps the kernel the
		// bytes of a local build. (distcc(1) calls the switch DISTCC_NO_CROSS_REWRITE; distcc 3.4
		// reads this name.)
		env = append(env, "DISTCC_NO_REWRITE_CROSS=1")
	}
	return env
}

// MakeArgs is the make command line for targets.
func (o Options) MakeArgs(targets ...string) []string {
	args := []string{"make", "-C", o.Src, "O=" + o.Out, "ARCH=um", "SUBARCH=" + o.Subarch, "-j" + strconv.Itoa(max(1, o.Jobs))}
	if o.CCWrapper != "" {
		args = append(args, "CC="+o.CCWrapper+" gcc", "HOSTCC="+o.CCWrapper+" gcc")
	}
	if o.Src != "" && o.Out != "" {
		// Both folders map to one root, as if the kernel were built in its source tree there.
		maps := "-ffile-prefix-map=" + o.Src + "=" + SourceRoot + " -ffile-prefix-map=" + o.Out + "=" + SourceRoot
		args = append(args, "KCFLAGS="+maps, "KAFLAGS="+maps)
	}
	return append(args, targets...)
}

func (o Options) make(ctx context.Context, targets ...string) error {
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	env := o.Env()
	if o.CCacheRemote != "" {
		env = append(env, "CCACHE_REMOTE_STORAGE="+o.CCacheRemote)
	}
	err := run.Run(ctx, run.Cmd{Args: o.MakeArgs(targets...), Env: env, Log: o.Log, Echo: o.Echo, TailLines: 300})
	if err != nil {
		return explain(err)
	}
	return nil
}

// Configure makes .config from the base target (`defconfig`, or `tinyconfig`) plus the requested
// options, runs olddefconfig, and checks that every requested option survived. It returns the final
// configuration.
func Configure(ctx context.Context, o Options, base string, req kconf.Requested) (kconf.Config, error) {
	if base != "defconfig" && base != "tinyconfig" {
		return nil, fmt.Errorf("configuration base %q: want defconfig or tinyconfig", base)
	}
	if err := o.make(ctx, base); err != nil {
		return nil, fmt.Errorf("make %s: %w", base, err)
	}
	cfgPath := filepath.Join(o.Out, ".config")
	based, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	// Later assignments win in kconfig, so appending the fragments overrides the base.
	merged := append(based, kconf.Format(req.Options, "simple-uml: options from kconfig/ fragments")...)
	if err := os.WriteFile(cfgPath, merged, 0o644); err != nil {
		return nil, err
	}
	if err := o.make(ctx, "olddefconfig"); err != nil {
		return nil, fmt.Errorf("make olddefconfig: %w", err)
	}
	final, err := kconf.ParseFile(cfgPath)
	if err != nil {
		return nil, err
	}
	if err := kconf.Check(req, final, o.Src); err != nil {
		return nil, err
	}
	return final, nil
}

// Build runs `make linux` and returns the path of the unstripped executable.
func Build(ctx context.Context, o Options) (string, error) {
	if err := o.make(ctx, "linux"); err != nil {
		return "", fmt.Errorf("kernel build failed: %w", err)
	}
	return filepath.Join(o.Out, "linux"), nil
}

// Menuconfig runs the kernel's menuconfig on the build directory, attached to the terminal.
func Menuconfig(ctx context.Context, o Options, stdin io.Reader, stdout io.Writer) error {
	return run.Run(ctx, run.Cmd{Args: o.MakeArgs("menuconfig"), Env: o.Env(), Stdin: stdin, Stdout: stdout, Stderr: stdout, Echo: o.Echo, Interactive: true})
}

// CompilerVersion is the first line of `gcc --version` (through the wrapper's compiler), for records.
func CompilerVersion(ctx context.Context) (string, error) {
	out, err := run.Output(ctx, run.Cmd{Args: []string{"gcc", "--version"}})
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(out, "\n")
	return first, nil
}

// CCacheStats reads ccache's counters (`ccache --print-stats`): the difference of two readings is
// what a build did.
func CCacheStats(ctx context.Context) (map[string]int64, error) {
	out, err := run.Output(ctx, run.Cmd{Args: []string{"ccache", "--print-stats"}})
	if err != nil {
		return nil, err
	}
	stats := map[string]int64{}
	for _, line := range strings.Split(out, "\n") {
		name, value, ok := strings.Cut(line, "\t")
		if n, err := strconv.ParseInt(value, 10, 64); ok && err == nil {
			stats[name] = n
		}
	}
	return stats, nil
}

// explain keeps, of a failed make's output, the lines that say what went wrong: compiler errors and
// make's "***" lines, falling back to the last lines.
func explain(err error) error {
	re, ok := err.(*run.Error)
	if !ok {
		return err
	}
	var keep []string
	for _, l := range re.Tail {
		if strings.Contains(l, "error:") || strings.Contains(l, "Error ") || strings.Contains(l, "***") ||
			strings.Contains(l, "undefined reference") || strings.Contains(l, "fatal") {
			keep = append(keep, l)
		}
	}
	if len(keep) > 20 {
		keep = keep[:20]
	}
	last := re.Tail
	if len(last) > 8 {
		last = last[len(last)-8:]
	}
	re.Tail = appendMissing(keep, last)
	return re
}

func appendMissing(a, b []string) []string {
	have := map[string]bool{}
	for _, l := range a {
		have[l] = true
	}
	for _, l := range b {
		if !have[l] {
			a = append(a, l)
		}
	}
	return a
}
