package pipeline

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/simple-uml/simple-uml/build/config"
)

// TestUnknownNamesListWhatExists: a lab, a recipe or a series that does not exist is refused by its
// target before anything runs, naming where it was looked for and what is there.
func TestUnknownNamesListWhatExists(t *testing.T) {
	cfg := config.Defaults()
	cfg.Paths.Labs, cfg.Paths.Recipes = t.TempDir(), t.TempDir()
	cfg.Paths.Dist, cfg.Paths.Cache = filepath.Join(t.TempDir(), "dist"), filepath.Join(t.TempDir(), "cache")
	for _, f := range []string{"router.toml", "client-server.toml", "README.md"} {
		os.WriteFile(filepath.Join(cfg.Paths.Labs, f), nil, 0o644)
	}
	os.WriteFile(filepath.Join(cfg.Paths.Recipes, "void-minimal.toml"), nil, 0o644)
	cfg.DefaultSeries = cfg.Kernel.Series
	cfg.OtherPins = map[string]config.KernelPin{"6.6": {Version: "6.6.60"}, "6.1": {Version: "6.1.192"}}
	unpinned, err := cfg.ForSeries("9.9")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		target string
		run    func() error
		want   string
	}{
		{"labTest", func() error { _, err := LabTest(ctx, cfg, "nosuchlab", io.Discard); return err },
			`unknown lab "nosuchlab" in ` + cfg.Paths.Labs + `: client-server, router`},
		{"lab", func() error { return Lab(ctx, cfg, "nosuchlab", nil, io.Discard) },
			`unknown lab "nosuchlab" in ` + cfg.Paths.Labs + `: client-server, router`},
		{"rootfs", func() error { _, err := Rootfs(ctx, cfg, "nosuch", io.Discard); return err },
			`unknown recipe "nosuch" in ` + cfg.Paths.Recipes + `: void-minimal`},
		{"kernel", func() error { _, err := Kernel(ctx, unpinned, io.Discard); return err },
			`unknown series "9.9" in kernel.lock: ` + cfg.DefaultSeries + ", 6.6, 6.1 (pin it with `go tool mage bump -series=9.9`)"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			err := tt.run()
			if err == nil || err.Error() != tt.want || !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("err = %v\nwant %s", err, tt.want)
			}
			if _, err := os.Stat(cfg.Paths.Cache); err == nil {
				t.Error("the cache was written: the name was not refused first")
			}
		})
	}
}
