package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/config"
)

// ReproOptions are the switches of `mage repro`.
type ReproOptions struct {
	Work    string   // holds the two runs; "" means <cache>/repro
	Recipes []string // root filesystem recipes to build; nil means rootfs.recipe
	// Between is called before the second run, for tests that change what must not matter.
	Between func()
}

// ReproResult says what Repro found.
type ReproResult struct {
	Releases   [2]string            // the two release folders
	Files      int                  // files compared
	Diff       *artifact.Difference // the first difference; nil when the releases are identical
	Diffoscope string               // diffoscope's report on Diff's file, when diffoscope is installed
}

// Repro runs kernel, rootfs and dist twice from the same inputs, each run with its own dist and cache
// folders (only verified downloads are shared), and compares the two releases byte for byte.
func Repro(ctx context.Context, cfg config.Config, opts ReproOptions, w io.Writer) (ReproResult, error) {
	var res ReproResult
	work := opts.Work
	if work == "" {
		work = filepath.Join(cfg.Paths.Cache, "repro")
	}
	recipes := opts.Recipes
	if len(recipes) == 0 {
		recipes = []string{cfg.Rootfs.Recipe}
	}
	if err := os.RemoveAll(work); err != nil {
		return res, err
	}
	for i, name := range []string{"first", "second"} {
		if i > 0 && opts.Between != nil {
			opts.Between()
		}
		c := cfg
		c.Paths.Dist = filepath.Join(work, name, "dist")
		c.Paths.Cache = filepath.Join(work, name, "cache")
		c.Rootfs.Kernel = "" // each run configures its images with the kernel it built
		start := time.Now()
		fmt.Fprintf(w, "repro: %s run in %s\n", name, filepath.Join(work, name))
		if _, err := Kernel(ctx, c, w); err != nil {
			return res, fmt.Errorf("repro, %s run: %w", name, err)
		}
		for _, r := range recipes {
			if _, err := Rootfs(ctx, c, r, w); err != nil {
				return res, fmt.Errorf("repro, %s run: %w", name, err)
			}
		}
		d, err := Dist(ctx, c, w)
		if err != nil {
			return res, fmt.Errorf("repro, %s run: %w", name, err)
		}
		res.Releases[i] = d.Dir
		fmt.Fprintf(w, "repro: %s run done in %s\n", name, time.Since(start).Round(time.Second))
	}
	entries, err := os.ReadDir(res.Releases[0])
	if err != nil {
		return res, err
	}
	res.Files = len(entries)
	if res.Diff, err = artifact.CompareDirs(res.Releases[0], res.Releases[1]); err != nil {
		return res, err
	}
	if res.Diff == nil {
		fmt.Fprintf(w, "repro: identical: the two releases (%d files) are the same bytes\n  %s\n  %s\n", res.Files, res.Releases[0], res.Releases[1])
		return res, nil
	}
	if res.Diff.Offset >= 0 {
		res.Diffoscope = artifact.Diffoscope(ctx, filepath.Join(res.Releases[0], res.Diff.File), filepath.Join(res.Releases[1], res.Diff.File))
	}
	fmt.Fprintf(w, "repro: DIFFERENT: %s\n", res.Diff)
	if res.Diffoscope != "" {
		fmt.Fprintf(w, "diffoscope:\n%s\n", res.Diffoscope)
	}
	return res, nil
}
