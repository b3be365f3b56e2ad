package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/lock"
	"github.com/simple-uml/simple-uml/build/releasedir"
)

// targetRun is one run of a target that writes the cache or dist, holding the cache's lock.
type targetRun struct {
	dist   string
	nested bool // a step of an outer run of the same cache: it took nothing and logs nothing
	unlock func()
}

type runKey struct{}

// outerRun is what a context carries of the run it belongs to.
type outerRun struct{ cache, dist string }

// startRun begins a target that writes the cache or dist. It takes the cache's lock: runs sharing a
// cache (and the dist folders built from it) go one at a time, and the lock lives in the cache, so a
// run that fails early has not created dist. It removes what killed runs left in dist, and sets the
// umask to 022, so files get the modes the stages ask for whatever the user's umask (images carry
// modes, and must not depend on it). A target another target runs as a step (rootfs builds the
// kernel it needs) runs within the outer run, which the returned context carries: it takes no lock,
// logs nothing of its own, and sweeps its dist only when it is not the outer run's (bisect builds
// each step into a dist of its own). The caller ends the run.
func startRun(ctx context.Context, cfg config.Config, what string, w io.Writer) (context.Context, *targetRun, error) {
	if outer, ok := ctx.Value(runKey{}).(outerRun); ok && outer.cache == cfg.Paths.Cache {
		if outer.dist != cfg.Paths.Dist {
			if err := sweepLeftovers(cfg.Paths.Dist, w); err != nil {
				return ctx, nil, err
			}
		}
		return ctx, &targetRun{dist: cfg.Paths.Dist, nested: true, unlock: func() {}}, nil
	}
	l, err := lock.Acquire(ctx, filepath.Join(cfg.Paths.Cache, "lock"), what, w)
	if err != nil {
		return ctx, nil, err
	}
	if err := sweepLeftovers(cfg.Paths.Dist, w); err != nil {
		l.Release()
		return ctx, nil, err
	}
	syscall.Umask(0o022)
	return context.WithValue(ctx, runKey{}, outerRun{cfg.Paths.Cache, cfg.Paths.Dist}), &targetRun{dist: cfg.Paths.Dist, unlock: l.Release}, nil
}

// end gives the lock back.
func (r *targetRun) end() { r.unlock() }

// leftoverPrefixes are the temporary names stages write in dist before renaming their outputs into
// place; a killed run leaves them behind.
var leftoverPrefixes = []string{releasedir.StagePrefix, ".fetch-", ".reimage-", ".owners-", ".rdump-"}

// sweepLeftovers removes what killed runs left in dist. Only a holder of the cache's lock may call it:
// then no other run is writing them.
func sweepLeftovers(dist string, w io.Writer) error {
	entries, err := os.ReadDir(dist)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		stale := strings.HasPrefix(name, ".") && (strings.HasSuffix(name, ".tmp") || strings.Contains(name, ".tmp-") || strings.Contains(name, ".tmp.configured"))
		for _, p := range leftoverPrefixes {
			stale = stale || strings.HasPrefix(name, p)
		}
		if !stale {
			continue
		}
		p := filepath.Join(dist, name)
		if err := files.RemoveAllWritable(p); err != nil { // a dump folder may be read-only inside
			return fmt.Errorf("remove %s, left by an interrupted run: %w", p, err)
		}
		fmt.Fprintf(w, "removed %s, left by an interrupted run\n", p)
	}
	return nil
}
