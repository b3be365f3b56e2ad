package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/simple-uml/simple-uml/build/console"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/lab"
	"github.com/simple-uml/simple-uml/build/peer"
	"github.com/simple-uml/simple-uml/build/run"
	"github.com/simple-uml/simple-uml/build/ui"
	"github.com/simple-uml/simple-uml/build/usernet"
)

// Up starts the instance in dir in the background and returns once its guest is ready, or has
// ended, or timeout has passed (it keeps booting then). The supervisor is this program, linked into
// the instance's folder from the state's programs/ folder, in a session of its own: it depends on
// no terminal and on no process of the caller's, which may end at once.
func Up(ctx context.Context, dir string, timeout time.Duration) (State, error) {
	if running(dir) {
		return readState(dir), nil
	}
	self, err := run.SelfIn(dir, filepath.Join(filepath.Dir(filepath.Dir(dir)), programsDir))
	if err != nil {
		return State{}, err
	}
	log, err := os.OpenFile(filepath.Join(dir, superviseFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return State{}, err
	}
	defer log.Close()
	cmd := exec.Command(self)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, log, log
	cmd.Env = append(os.Environ(), SuperviseVar+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return State{}, fmt.Errorf("start the supervisor of %s: %w", dir, err)
	}
	ended := make(chan struct{})
	go func() { cmd.Wait(); close(ended) }() // reaped if this process outlives it
	return awaitUp(ctx, dir, cmd.Process.Pid, timeout, ended)
}

// awaitUp waits for the supervisor to say the guest is ready or has ended, or for the supervisor
// to end without saying so (it says why in its log).
func awaitUp(ctx context.Context, dir string, supervisor int, timeout time.Duration, ended <-chan struct{}) (State, error) {
	deadline := time.Now().Add(timeout)
	for {
		st := readState(dir) // the last run's until this supervisor writes its own
		if st.Supervisor == supervisor && (st.Phase == PhaseReady || st.Phase == PhaseExited || st.Phase == PhaseCrashed) || time.Now().After(deadline) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-ended:
			if st := readState(dir); st.Supervisor == supervisor && (st.Phase == PhaseExited || st.Phase == PhaseCrashed) {
				return st, nil
			}
			log, _ := os.ReadFile(filepath.Join(dir, superviseFile))
			return st, fmt.Errorf("the supervisor of %s ended before its guest booted: %s", dir, lastLine(string(log)))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// Stop stops the instance in dir (its supervisor stops the guest and exits) and waits for it.
func Stop(dir string) error {
	st := readState(dir)
	if !running(dir) {
		return nil
	}
	if st.Supervisor <= 0 {
		return fmt.Errorf("%s: the supervisor runs but has not said its pid yet; try again", dir)
	}
	if err := syscall.Kill(st.Supervisor, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop the supervisor (pid %d): %w", st.Supervisor, err)
	}
	// Its lock goes a moment before the process: wait for both.
	for deadline := time.Now().Add(15 * time.Second); running(dir) || peer.Alive(st.Supervisor); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the supervisor (pid %d) of %s did not stop within 15 s", st.Supervisor, dir)
		}
	}
	return nil
}

// Reset puts the instance in dir back to its pristine image: its copy-on-write file goes. A running
// instance is stopped first and started again after (by the caller: Reset says whether it ran).
func Reset(dir string) (wasRunning bool, err error) {
	wasRunning = running(dir)
	if err := Stop(dir); err != nil {
		return wasRunning, err
	}
	if err := os.Remove(filepath.Join(dir, cowFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return wasRunning, err
	}
	return wasRunning, files.RemoveAllWritable(filepath.Join(dir, disksDir)) // a lab's
}

// Remove stops the instance in dir and removes its folder.
func Remove(dir string) error {
	if err := Stop(dir); err != nil {
		return err
	}
	return files.RemoveAllWritable(dir)
}

// Logs writes the instance's console log (the older part first) to w, or for a lab instance its
// log of the lab, or with guest that guest's console log (across the lab's runs); follow keeps
// writing what comes until ctx ends, across rotations and restarts.
func Logs(ctx context.Context, dir, guest string, w io.Writer, follow bool) error {
	path := filepath.Join(dir, consoleFile)
	if guest != "" {
		spec, err := readSpec(dir)
		if err != nil {
			return err
		}
		if err := labGuest(spec, guest); err != nil {
			return err
		}
		logs := filepath.Join(dir, logsDir)
		if !files.Exists(logs) {
			return fmt.Errorf("lab instance %s has not run yet: `go tool mage up %s` starts it", spec.Name, spec.Name)
		}
		path = lab.ConsolePath(logs, guest)
	}
	if err := files.Stream(w, path+".1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !follow {
		return nil
	} else if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil || !follow {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if fi, err := os.Stat(path); err == nil && !sameFile(f, fi) {
			// Rotated: the rest of the old file, then the new one.
			if _, err := io.Copy(w, f); err != nil {
				return err
			}
			f.Close()
			if f, err = os.Open(path); err != nil {
				return err
			}
		}
	}
}

func sameFile(f *os.File, fi os.FileInfo) bool {
	own, err := f.Stat()
	return err == nil && os.SameFile(own, fi)
}

// Console attaches the terminal in/out to the instance's console until Ctrl-].
func Console(ctx context.Context, dir string, in *os.File, out io.Writer) error {
	if spec, err := readSpec(dir); err == nil && spec.Lab != nil {
		return fmt.Errorf("instance %s is a lab: attach to one of its guests (%s) with `go tool mage console %s/<guest>`", spec.Name, strings.Join(spec.Lab.GuestNames(), ", "), spec.Name)
	}
	if !running(dir) {
		return fmt.Errorf("%s does not run: `go tool mage up %s` starts it", dir, filepath.Base(dir))
	}
	token, err := os.ReadFile(filepath.Join(dir, tokenFile))
	if err != nil {
		return err
	}
	return console.Attach(ctx, filepath.Join(dir, socketFile), strings.TrimSpace(string(token)), in, out)
}

// Status is one line of ps: an instance, or a foreground guest of some simple-uml command.
type Status struct {
	Name    string
	Kind    string // "guest" or "lab" (instances), or "foreground"
	Recipe  string
	State   State
	Running bool
	Uptime  time.Duration
	Memory  int64 // the kernel process's resident memory, bytes
	Restart Restart
	Forward string
}

// List is the status of every instance in state.
func List(state string) ([]Status, error) {
	names, err := Names(state)
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, name := range names {
		dir := Dir(state, name)
		spec, err := Load(state, name)
		if err != nil {
			continue // being made or removed
		}
		st := Status{Name: name, Kind: spec.Kind(), Recipe: spec.Recipe, State: readState(dir), Running: running(dir), Restart: spec.Restart}
		if !st.Running && st.State.Phase != PhaseExited && st.State.Phase != PhaseCrashed {
			st.State.Phase = PhaseStopped
		}
		if st.Running && len(st.State.Kernels()) > 0 {
			st.Uptime = time.Since(st.State.Started)
			for _, pid := range st.State.Kernels() {
				st.Memory += residentMemory(pid)
			}
		}
		st.Forward = forwards(spec)
		out = append(out, st)
	}
	return out, nil
}

// WriteTable writes the statuses as ps shows them: a line each, in columns.
func WriteTable(w io.Writer, all []Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tRECIPE\tSTATE\tUPTIME\tMEMORY\tPIDS\tRESTART\tFORWARDS")
	for _, s := range all {
		state := s.State.Phase
		if s.State.Reason != "" && !s.Running {
			state += " (" + s.State.Reason + ")"
		}
		if s.State.Restarts > 0 {
			state += fmt.Sprintf(", %d restarts", s.State.Restarts)
		}
		pids, uptime, memory := "-", "-", "-"
		if s.Running {
			var kernels []string
			for _, pid := range s.State.Kernels() {
				kernels = append(kernels, strconv.Itoa(pid))
			}
			pids = fmt.Sprintf("%d/%s", s.State.Supervisor, orDash(strings.Join(kernels, ",")))
		}
		if s.Uptime > 0 {
			uptime = s.Uptime.Round(time.Second).String()
		}
		if s.Memory > 0 {
			memory = ui.Size(s.Memory)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Kind, orDash(s.Recipe), state, uptime, memory, pids, orDash(string(s.Restart)), orDash(s.Forward))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// forwards are the host ports the instance forwards to its guest, or its lab's guests.
func forwards(spec Spec) string {
	var out []string
	add := func(to string, forwards []usernet.Forward) {
		for _, f := range forwards {
			out = append(out, fmt.Sprintf("127.0.0.1:%d->%s%d", f.Host, to, f.Guest))
		}
	}
	if n := spec.Options.Net; n != nil {
		add("", n.Forwards)
	}
	if spec.Lab != nil {
		for _, g := range spec.Lab.Guests {
			f, _ := usernet.ParseForwards(g.Forward) // checked by lab.Load
			add(g.Name+":", f)
		}
	}
	return strings.Join(out, " ")
}

// residentMemory is process pid's resident memory (VmRSS), in bytes; 0 when unknown.
func residentMemory(pid int) int64 {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
