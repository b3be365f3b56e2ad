package kernel

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/kbuild"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/source"
	"github.com/simple-uml/simple-uml/build/ui"
)

// Build is a configured build folder of a source tree. Close closes its log.
type Build struct {
	kbuild.Options
	Version string // the tree's
	Tree    *manifest.Tree
	closer  func()
}

// Configure makes the build folder's .config: the profile's base (defconfig), the requested options,
// olddefconfig. The full make output goes to the build log; a terminal shows its latest line.
func Configure(ctx context.Context, cfg config.Config, tree source.Tree, in Inputs, w io.Writer) (*Build, error) {
	out := in.Source.BuildDir(cfg)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(out, kbuild.LogName))
	if err != nil {
		return nil, err
	}
	status := ui.NewLineStatus("make")
	b := &Build{Version: tree.Version, Tree: in.Source.Tree, closer: func() { status.Done(); logFile.Close() }}
	b.Options = kbuild.Options{
		Src: tree.Dir, Out: out, Subarch: cfg.Kernel.Subarch, Jobs: cfg.Jobs(),
		CCWrapper: cfg.Kernel.CCWrapper, CCacheRemote: cfg.Kernel.CCacheRemote, Timestamp: tree.Timestamp,
		Log: io.MultiWriter(logFile, status), Echo: w,
	}
	if _, err := kbuild.Configure(ctx, b.Options, in.Base, in.Requested); err != nil {
		b.Close()
		return nil, fmt.Errorf("configure kernel %s: %w", tree.Version, err)
	}
	return b, nil
}

// Close closes the build log.
func (b *Build) Close() { b.closer() }

// Make builds linux and returns the unstripped executable. With ccache as the compiler wrapper it
// also says what ccache did for the build.
func (b *Build) Make(ctx context.Context, w io.Writer) (string, *manifest.CCacheStats, error) {
	what := "linux " + b.Version
	if b.Tree != nil {
		what = fmt.Sprintf("%s (%s) out of tree in %s", b.Tree.Path, DescribeTree(b.Tree), b.Out)
	}
	fmt.Fprintf(w, "building %s (ARCH=um SUBARCH=%s, -j%d); log: %s\n", what, b.Subarch, b.Jobs, filepath.Join(b.Out, kbuild.LogName))
	if b.CCWrapper != "ccache" {
		linux, err := kbuild.Build(ctx, b.Options)
		return linux, nil, err
	}
	if b.CCacheRemote != "" {
		fmt.Fprintf(w, "ccache: remote storage %s (kernel.ccache_remote)\n", b.CCacheRemote)
	}
	before, err := kbuild.CCacheStats(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("ccache (kernel.cc_wrapper): %w", err)
	}
	linux, err := kbuild.Build(ctx, b.Options)
	if err != nil {
		return "", nil, err
	}
	after, err := kbuild.CCacheStats(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("ccache (kernel.cc_wrapper): %w", err)
	}
	stats := ccacheDelta(before, after)
	fmt.Fprintf(w, "ccache: %d hits (%d from remote storage), %d misses\n", stats.Hits, stats.RemoteHits, stats.Misses)
	return linux, stats, nil
}

// ccacheDelta is what ccache counted between two readings of its statistics.
func ccacheDelta(before, after map[string]int64) *manifest.CCacheStats {
	delta := func(names ...string) (n int64) {
		for _, name := range names {
			n += after[name] - before[name]
		}
		return n
	}
	return &manifest.CCacheStats{Hits: delta("direct_cache_hit", "preprocessed_cache_hit"),
		RemoteHits: delta("remote_storage_hit"), Misses: delta("cache_miss")}
}

// Release is the release the built kernel reports (uname -r). A tree's has CONFIG_LOCALVERSION_AUTO's
// -g<commit>[-dirty]; a tarball's is its version.
func (b *Build) Release() (string, error) {
	if b.Tree == nil {
		return b.Version, nil
	}
	release, err := os.ReadFile(filepath.Join(b.Out, "include", "config", "kernel.release"))
	if err != nil {
		return "", fmt.Errorf("the build of %s wrote no kernel.release: %w", b.Src, err)
	}
	return strings.TrimSpace(string(release)), nil
}
