package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/ui"
)

// Up starts instance name in the background (making it first from the boot settings and restart,
// when it does not exist) and returns once its guest is ready.
func Up(ctx context.Context, cfg config.Config, name, restart string, w io.Writer) error {
	dir := instance.Dir(cfg.Paths.State, name)
	spec, err := instance.Load(cfg.Paths.State, name)
	if err != nil {
		if spec, err = createInstance(cfg, name, restart, w); err != nil {
			return err
		}
	} else if restart != "" {
		fmt.Fprintf(w, "instance %s exists: its restart policy and boot settings are those it was made with (`go tool mage rm %s` to make it again)\n", name, name)
	}
	timeout := time.Duration(cfg.Boot.Timeout) * time.Second
	if spec.Lab != nil {
		timeout = spec.Lab.StartBound(timeout) // each step of each guest within the boot timeout
	}
	st, err := instance.Up(ctx, dir, timeout)
	if err != nil {
		return err
	}
	if spec.Lab == nil {
		fmt.Fprintf(w, "instance %s: %s (supervisor pid %d, kernel pid %d)\n", name, st.Phase, st.Supervisor, st.Kernel)
		fmt.Fprintf(w, "  console: go tool mage console %s; log: go tool mage logs %s; stop: go tool mage stop %s\n", name, name, name)
	} else {
		fmt.Fprintf(w, "lab instance %s: %s (supervisor pid %d, guests' kernel pids %v)\n", name, st.Phase, st.Supervisor, st.Guests)
		fmt.Fprintf(w, "  console: go tool mage console %s/<guest>; logs: go tool mage logs %s (the lab) or %s/<guest>; stop: go tool mage stop %s\n", name, name, name, name)
	}
	if st.Phase != instance.PhaseReady {
		return fmt.Errorf("instance %s is %s, not ready (%s): see `go tool mage logs %s`", name, st.Phase, st.Reason, name)
	}
	return nil
}

// createInstance makes instance name from dist/'s kernel and the boot settings, saying what of the
// host it reaches as a boot does: a lab instance when labs/ has a lab of that name, else a guest of
// boot.recipe's image.
func createInstance(cfg config.Config, name, restart string, w io.Writer) (instance.Spec, error) {
	if restart == "" {
		restart = string(instance.RestartNo)
	}
	policy, err := instance.ParseRestart(restart)
	if err != nil {
		return instance.Spec{}, err
	}
	if files.Exists(filepath.Join(cfg.Paths.Labs, name+".toml")) {
		return createLabInstance(cfg, name, policy, w)
	}
	// The instance keeps its COW file in its own folder: no throwaway one.
	cfg.Boot.COW = filepath.Join(instance.Dir(cfg.Paths.State, name), "guest.cow")
	g, err := prepareGuest(cfg, w)
	if err != nil {
		return instance.Spec{}, err
	}
	kernel, image := g.opts.Kernel, g.opts.Image
	spec := instance.Spec{Name: name, Recipe: cfg.Boot.Recipe, Ready: cfg.Boot.Ready, Restart: policy, Options: g.opts}
	if err := instance.Create(cfg.Paths.State, spec, kernel, image); err != nil {
		return spec, err
	}
	fmt.Fprintf(w, "instance %s: made from %s and %s, restart %s, in %s\n", name, kernel, image, policy, instance.Dir(cfg.Paths.State, name))
	describeBoot(w, g)
	return spec, nil
}

// createLabInstance makes instance name of labs/<name>.toml, its guests over dist/'s kernel and
// their images.
func createLabInstance(cfg config.Config, name string, policy instance.Restart, w io.Writer) (instance.Spec, error) {
	l, err := lab.Load(cfg.Paths.Labs, name)
	if err != nil {
		return instance.Spec{}, err
	}
	linux, err := distLinux(cfg)
	if err != nil {
		return instance.Spec{}, err
	}
	images := map[string]lab.Image{}
	for _, g := range l.Guests {
		if images[g.Name], err = labImage(cfg, g); err != nil {
			return instance.Spec{}, err
		}
	}
	spec := instance.Spec{Name: name, Ready: cfg.Boot.Ready, Restart: policy, Options: guestOptions(cfg, linux), Lab: l}
	if err := instance.CreateLab(cfg.Paths.State, spec, linux, images); err != nil {
		return spec, err
	}
	fmt.Fprintf(w, "instance %s: made from lab %s (%d guests on %d LANs) and %s, restart %s, in %s\n", name, l.Path, len(l.Guests), len(l.LANs), linux, policy, instance.Dir(cfg.Paths.State, name))
	return spec, nil
}

// Ps lists the instances and the guests simple-uml commands run in the foreground.
func Ps(cfg config.Config, w io.Writer) error {
	all, err := instance.List(cfg.Paths.State)
	if err != nil {
		return err
	}
	supervisors := map[int]bool{}
	for _, s := range all {
		supervisors[s.State.Supervisor] = s.Running
	}
	for _, s := range instance.Foreground(os.TempDir()) {
		if !supervisors[s.State.Supervisor] { // an instance's guest is listed as the instance
			all = append(all, s)
		}
	}
	if len(all) == 0 {
		fmt.Fprintln(w, "nothing runs, and there is no instance (`go tool mage up <name>` makes one)")
		return nil
	}
	return instance.WriteTable(w, all)
}

// instanceDir is an existing instance's folder; an unknown name lists those there are.
func instanceDir(cfg config.Config, name string) (string, error) {
	if _, err := instance.Load(cfg.Paths.State, name); err != nil {
		return "", err
	}
	return instance.Dir(cfg.Paths.State, name), nil
}

// labGuestDir is the folder of an instance named "<instance>" or "<lab instance>/<guest>", and the
// guest.
func labGuestDir(cfg config.Config, name string) (dir, guest string, err error) {
	name, guest, _ = strings.Cut(name, "/")
	dir, err = instanceDir(cfg, name)
	return dir, guest, err
}

// StopInstance stops instance name; its folder and COW file stay.
func StopInstance(cfg config.Config, name string, w io.Writer) error {
	dir, err := instanceDir(cfg, name)
	if err != nil {
		return err
	}
	if err := instance.Stop(dir); err != nil {
		return err
	}
	fmt.Fprintf(w, "instance %s: stopped (its disk stays; `go tool mage up %s` starts it again)\n", name, name)
	return nil
}

// Logs writes instance name's console log, or a lab instance's guest's ("<lab>/<guest>"); follow
// keeps writing until Ctrl-C.
func Logs(ctx context.Context, cfg config.Config, name string, follow bool, w io.Writer) error {
	dir, guest, err := labGuestDir(cfg, name)
	if err != nil {
		return err
	}
	return instance.Logs(ctx, dir, guest, ui.VisibleWriter(w), follow)
}

// Console attaches the terminal to instance name's console, or a lab instance's guest's
// ("<lab>/<guest>"), until Ctrl-].
func Console(ctx context.Context, cfg config.Config, name string, stdin *os.File, stdout io.Writer) error {
	dir, guest, err := labGuestDir(cfg, name)
	if err != nil {
		return err
	}
	if guest != "" {
		return instance.ConsoleGuest(ctx, dir, guest, stdin, stdout)
	}
	return instance.Console(ctx, dir, stdin, stdout)
}

// Reset puts instance name back to its pristine image, and starts it again if it ran.
func Reset(ctx context.Context, cfg config.Config, name string, w io.Writer) error {
	dir, err := instanceDir(cfg, name)
	if err != nil {
		return err
	}
	wasRunning, err := instance.Reset(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "instance %s: back to its pristine image\n", name)
	if !wasRunning {
		return nil
	}
	return Up(ctx, cfg, name, "", w)
}

// Remove stops instance name and removes it, disk and all.
func Remove(cfg config.Config, name string, w io.Writer) error {
	dir, err := instanceDir(cfg, name)
	if err != nil {
		return err
	}
	if err := instance.Remove(dir); err != nil {
		return err
	}
	fmt.Fprintf(w, "instance %s: removed\n", name)
	return nil
}
