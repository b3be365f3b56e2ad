package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/gitrepo"
)

// Version says which simple-uml this is (the checkout's tag and commit: simple-uml runs from its
// source), the Go and mage that built it, and the kernel it pins.
func Version(ctx context.Context, cfg config.Config, w io.Writer) error {
	repo := gitrepo.Repo{Dir: cfg.Root}
	version, commit := "unknown (not a git checkout)", "unknown"
	if head, err := repo.Head(ctx); err == nil {
		commit = head
		if version, err = repo.Describe(ctx); err != nil {
			return err
		}
	} else if !errors.Is(err, gitrepo.ErrNotGit) {
		return err
	}
	fmt.Fprintf(w, "simple-uml %s\ncommit     %s\ngo         %s %s/%s\nmage       %s\nkernel     %s (series %s, kernel.lock)\n",
		version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH, moduleVersion(cfg.Root, "github.com/magefile/mage"), cfg.Pin.Version, cfg.Kernel.Series)
	return nil
}

// moduleVersion is the version of a module go.mod requires: mage compiles the magefile as a list of
// files, so the program carries no module information of its own.
func moduleVersion(root, path string) string {
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == path {
			return f[1]
		}
	}
	return "unknown"
}
