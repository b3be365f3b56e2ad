package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/run"
	"github.com/simple-uml/simple-uml/build/uml"
)

// LabReport is what LabTest found.
type LabReport struct {
	Lab    string
	Ready  time.Duration // from the start to every guest up and configured
	Checks []uml.CheckResult
	Dir    string // the run folder: consoles and captures
}

// LabTest brings the lab up from dist/'s kernel and images, runs its checks inside the guests, stops
// everything and fails if a check failed or a guest went down.
func LabTest(ctx context.Context, cfg config.Config, name string, w io.Writer) (LabReport, error) {
	start := time.Now()
	r, err := startLab(ctx, cfg, name, w)
	if err != nil {
		return LabReport{Lab: name}, err
	}
	defer r.Stop()
	report := LabReport{Lab: name, Ready: time.Since(start), Dir: r.Dir}
	fmt.Fprintf(w, "lab %s: %d guests up in %s; checks:\n", name, len(r.Lab.Guests), report.Ready.Round(time.Millisecond))
	if report.Checks, err = r.Check(ctx); err != nil {
		return report, err
	}
	failed := append(uml.FailedChecks(report.Checks), r.Down()...)
	if len(failed) > 0 {
		return report, fmt.Errorf("lab %s: %d problem(s):\n    %s\n  consoles and captures: %s", name, len(failed), strings.Join(failed, "\n    "), r.Dir)
	}
	fmt.Fprintf(w, "lab %s passed: %d checks (consoles and captures: %s)\n", name, len(report.Checks), r.Dir)
	return report, nil
}

// Lab brings the lab up and keeps it up until ctx ends (Ctrl-C), saying what runs where and when a
// guest goes down (stops or panics). console are the arguments to this program that attach a
// terminal to a guest's console, given the lab's and the guest's names after them (`labConsole`):
// each tmux window runs it.
func Lab(ctx context.Context, cfg config.Config, name string, console []string, w io.Writer) error {
	r, err := startLab(ctx, cfg, name, w)
	if err != nil {
		return err
	}
	defer r.Stop()
	current, err := r.Record(runFolder(cfg))
	if err != nil {
		return err
	}
	defer os.Remove(current)
	r.Describe(w)
	if session, err := openLabTmux(ctx, cfg, r, console); err != nil {
		fmt.Fprintf(w, "no tmux session (%v); attach to a console with `go tool mage labConsole %s <guest>`\n", err, name)
	} else {
		defer lab.CloseTmux(session)
		fmt.Fprintf(w, "consoles: `tmux attach -t %s` (a window per guest), or `go tool mage labConsole %s <guest>`\n", session, name)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	reported := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(w, "lab %s: stopping\n", name)
			return nil
		case <-tick.C:
			for _, e := range r.Down() {
				if !reported[e] {
					fmt.Fprintf(w, "lab %s: guest %s\n", name, e)
					reported[e] = true
				}
			}
		}
	}
}

// LabConsole attaches this terminal to a guest's console in the running lab name, until Ctrl-].
func LabConsole(ctx context.Context, cfg config.Config, name, guest string, stdin *os.File, stdout io.Writer) error {
	l, err := lab.Load(cfg.Paths.Labs, name)
	if err != nil {
		return err
	}
	return lab.AttachGuest(ctx, runFolder(cfg), l, guest, stdin, stdout)
}

// openLabTmux opens the lab's tmux session, whose windows run this program with the console
// arguments. A window's command gets the tmux server's environment, not this one's: it is told
// where the running lab is.
func openLabTmux(ctx context.Context, cfg config.Config, r *lab.Running, console []string) (string, error) {
	return r.OpenTmux(ctx, cfg.Root, []string{"SUML_CACHE=" + cfg.Paths.Cache, "SUML_LABS=" + cfg.Paths.Labs}, append([]string{run.Self()}, console...))
}

// startLab loads the lab file and starts the lab in a new run folder under the cache.
func startLab(ctx context.Context, cfg config.Config, name string, w io.Writer) (*lab.Running, error) {
	l, err := lab.Load(cfg.Paths.Labs, name)
	if err != nil {
		return nil, err
	}
	linux, err := distLinux(cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "lab %s: starting %d guests on %d LANs\n", name, len(l.Guests), len(l.LANs))
	guest := guestOptions(cfg, linux)
	r, err := lab.Start(ctx, l, lab.Options{Guest: guest, Image: func(g lab.Guest) (lab.Image, error) { return labImage(cfg, g) },
		Runs: runFolder(cfg), Ready: cfg.Boot.Ready, Timeout: guest.Timeout, Log: w})
	if err == nil {
		fmt.Fprintf(w, "lab %s: run folder %s\n", name, r.Dir)
	}
	return r, err
}

// distLinux is dist/'s kernel, which must be there.
func distLinux(cfg config.Config) (string, error) {
	linux := filepath.Join(cfg.Paths.Dist, kernel.LinuxName)
	if _, err := os.Stat(linux); err != nil {
		return "", fmt.Errorf("%s is missing: build it with `go tool mage kernel`, or fetch a release with `go tool mage fetch`: %w", linux, err)
	}
	return linux, nil
}

// labImage is what a guest boots: the image its lab file names, or its recipe's in dist/ with the
// root password from the recipe or its record.
func labImage(cfg config.Config, g lab.Guest) (lab.Image, error) {
	if g.Image != "" {
		info, err := os.Stat(g.Image)
		if err == nil && !info.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
		if err != nil {
			return lab.Image{}, fmt.Errorf("guest %s: image %s: %w (name a root filesystem image, such as one `go tool mage rootfs` builds)", g.Name, g.Image, err)
		}
		return lab.Image{Path: g.Image, RootPassword: g.RootPassword}, nil
	}
	recipe := g.Recipe
	if recipe == "" {
		recipe = cfg.Boot.Recipe
	}
	image, _, r, err := distImage(cfg, recipe)
	if err != nil {
		return lab.Image{}, err
	}
	return lab.Image{Path: image, RootPassword: r.RootPassword}, nil
}
