package pipeline

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/cachedir"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/ui"
)

// Cache shows what the cache holds, or with clean empties it (but the downloads with keepDownloads),
// once no run of simple-uml writes it and no guest uses it.
func Cache(ctx context.Context, cfg config.Config, clean, keepDownloads bool, w io.Writer) error {
	if !clean {
		return showCache(cfg, w)
	}
	ctx, run, err := startRun(ctx, cfg, "mage cache -clean", w)
	if err != nil {
		return err
	}
	defer run.end()
	if err := cachedir.Clean(ctx, cfg.Paths.Cache, cfg.Paths.Downloads, keepDownloads, w); err != nil {
		return err
	}
	if !strings.HasPrefix(cfg.Paths.Downloads, cfg.Paths.Cache+string(filepath.Separator)) {
		fmt.Fprintf(w, "downloads in %s (paths.downloads) are outside the cache: left as they are\n", cfg.Paths.Downloads)
	}
	return nil
}

func showCache(cfg config.Config, w io.Writer) error {
	entries, err := cachedir.Usage(cfg.Paths.Cache)
	if err != nil {
		return err
	}
	var total int64
	fmt.Fprintf(w, "cache %s (paths.cache, SUML_CACHE):\n", cfg.Paths.Cache)
	for _, e := range entries {
		total += e.Bytes
		fmt.Fprintf(w, "  %-10s %10s  %s\n", e.Name, ui.Size(e.Bytes), e.What)
	}
	fmt.Fprintf(w, "  %-10s %10s\n", "total", ui.Size(total))
	fmt.Fprintln(w, "`go tool mage cache -clean` empties it (-keepDownloads keeps the verified downloads); everything in it can be made again")
	return nil
}
