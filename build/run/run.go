// Package run executes external commands the one way this project does: printed first in a form a user
// can paste into a shell, bound to a context that stops the whole process group, with output either
// streamed or captured to a log whose tail is kept for error messages.
package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/lock"
)

// Cmd describes one external command.
type Cmd struct {
	Args []string // program and arguments; Args[0] is looked up in PATH
	Dir  string   // working directory; empty means the current one
	Env  []string // KEY=VALUE pairs added to (and overriding) the inherited environment
	// Stdout and Stderr receive the output; nil discards it (it still reaches Log and the tail).
	Stdout, Stderr io.Writer
	Stdin          io.Reader // nil means no input
	Log            io.Writer // when set, receives all output as well
	Echo           io.Writer // where the command line is printed before it runs; nil means os.Stderr
	TailLines      int       // lines of output kept for the error message; 0 means 25
	// Interactive keeps the command in the terminal's foreground process group with Stdin, Stdout and
	// Stderr passed as they are, so that a full-screen program (menuconfig) owns the terminal; Log and
	// the tail see nothing, and cancelling signals only the command itself.
	Interactive bool
}

// Error is a failed command: its command line and the last lines it printed.
type Error struct {
	Cmdline string
	Tail    []string
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.Cmdline, e.Err)
	if len(e.Tail) > 0 {
		b.WriteString("\n  last output:\n")
		for _, l := range e.Tail {
			b.WriteString("    " + l + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *Error) Unwrap() error { return e.Err }

// Cmdline renders env and args as one shell command line that can be pasted to rerun the command.
func Cmdline(env []string, args []string) string {
	parts := make([]string, 0, len(env)+len(args))
	sorted := append([]string(nil), env...)
	sort.Strings(sorted)
	for _, kv := range sorted {
		k, v, _ := strings.Cut(kv, "=")
		parts = append(parts, k+"="+Quote(v))
	}
	for _, a := range args {
		parts = append(parts, Quote(a))
	}
	return strings.Join(parts, " ")
}

// Quote returns s quoted for a POSIX shell when it needs quoting.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Run runs c and waits for it. Cancelling ctx sends SIGTERM to the command's whole process group (make
// starts many children) and SIGKILL a few seconds later.
func Run(ctx context.Context, c Cmd) error {
	if len(c.Args) == 0 {
		return errors.New("run: no command")
	}
	line := Cmdline(c.Env, c.Args)
	if c.Dir != "" {
		line = "(cd " + Quote(c.Dir) + " && " + line + ")"
	}
	echo := c.Echo
	if echo == nil {
		echo = os.Stderr
	}
	fmt.Fprintf(echo, "$ %s\n", line)

	tailN := c.TailLines
	if tailN == 0 {
		tailN = 25
	}
	tail := &tailWriter{max: tailN}
	out := []io.Writer{tail}
	if c.Log != nil {
		out = append(out, c.Log)
	}
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = c.Stdin
	combined := &lockedWriter{w: io.MultiWriter(out...)}
	switch {
	case c.Interactive:
		// The terminal itself, not a pipe: full-screen programs check that their output is a terminal.
		cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
	case c.Stdout == nil && c.Stderr == nil:
		// One writer for both: exec then gives the command a single pipe, keeping the order of lines.
		cmd.Stdout, cmd.Stderr = combined, combined
	default:
		cmd.Stdout = io.MultiWriter(combined, orDiscard(c.Stdout))
		cmd.Stderr = io.MultiWriter(combined, orDiscard(c.Stderr))
	}
	if !c.Interactive {
		// Its own process group, so that cancelling stops everything it started. runTied kills it with
		// us, even with SIGKILL: what it started itself (make's compilers) runs to its end, for
		// nothing kills a group whose parent is gone.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	}
	cmd.WaitDelay = 5 * time.Second
	err := runTied(cmd)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		// Make sure nothing of the group outlives the cancellation.
		if cmd.Process != nil && !c.Interactive {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if errors.Is(err, exec.ErrNotFound) {
		err = fmt.Errorf("%w: install %s (see `go tool mage doctor`)", err, c.Args[0])
	}
	return &Error{Cmdline: line, Tail: tail.lines(), Err: err}
}

// runTied runs cmd as exec.Cmd.Run does, tied to this program (StartTied).
func runTied(cmd *exec.Cmd) error {
	tied, err := StartTied(cmd)
	if err != nil {
		return err
	}
	return tied.Wait()
}

// Self is this program, for a command to run again while this process lives: its /proc entry, which
// names the file it was started from even after that path is rebuilt or removed (`go tool mage`
// rebuilds its binary on every call, and several calls at once race to compile it).
func Self() string { return fmt.Sprintf("/proc/%d/exe", os.Getpid()) }

// SelfIn puts this program in dir and returns its path there, for a process that outlives this one
// (an instance's supervisor): Self names a file only while this process lives. The file in dir is
// a hard link to the one copy of this program in shared, named by its digest, so that the
// supervisors of one program share its pages in memory; copies no instance links any more go.
func SelfIn(dir, shared string) (string, error) {
	sum, err := digest.File("/proc/self/exe")
	if err != nil {
		return "", fmt.Errorf("read this program: %w", err)
	}
	self, err := os.Stat("/proc/self/exe")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(shared, 0o700); err != nil {
		return "", err
	}
	// One up at a time here: another's prune would take a copy this one has made and not linked yet.
	held, err := lock.Acquire(context.Background(), filepath.Join(shared, ".lock"), "a copy of this program", io.Discard)
	if err != nil {
		return "", err
	}
	defer held.Release()
	one := filepath.Join(shared, sum)
	if fi, err := os.Stat(one); err != nil || fi.Size() != self.Size() { // none, or cut short by a crash
		if err := files.WriteAtomic(one, 0o500, func(w io.Writer) error { return files.Stream(w, "/proc/self/exe") }); err != nil {
			return "", fmt.Errorf("copy this program into %s: %w", shared, err)
		}
	}
	path := filepath.Join(dir, "simple-uml")
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err := os.Link(one, path); err != nil {
		return "", fmt.Errorf("link this program into %s: %w", dir, err)
	}
	pruneUnlinked(shared, one)
	return path, nil
}

// pruneUnlinked removes the programs in shared but keep that no folder links any more (their only
// name is there): a supervisor running one keeps it open regardless. Dot files (the lock, a copy
// being written) stay.
func pruneUnlinked(shared, keep string) {
	entries, _ := os.ReadDir(shared)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(shared, e.Name())
		var st syscall.Stat_t
		if path != keep && syscall.Lstat(path, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Nlink == 1 {
			os.Remove(path)
		}
	}
}

// Output runs c and returns its standard output, trimmed.
func Output(ctx context.Context, c Cmd) (string, error) {
	var buf bytes.Buffer
	c.Stdout = &buf
	if c.Echo == nil {
		c.Echo = io.Discard
	}
	err := Run(ctx, c)
	return strings.TrimSpace(buf.String()), err
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// lockedWriter serialises writes from the stdout and stderr copiers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tailWriter keeps the last max complete lines written to it.
type tailWriter struct {
	max     int
	partial []byte
	buf     []string
}

func (t *tailWriter) Write(p []byte) (int, error) {
	data := append(t.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		t.buf = append(t.buf, string(data[:i]))
		if len(t.buf) > t.max {
			t.buf = t.buf[len(t.buf)-t.max:]
		}
		data = data[i+1:]
	}
	t.partial = append(t.partial[:0], data...)
	return len(p), nil
}

func (t *tailWriter) lines() []string {
	out := append([]string(nil), t.buf...)
	if len(t.partial) > 0 {
		out = append(out, string(t.partial))
	}
	if len(out) > t.max {
		out = out[len(out)-t.max:]
	}
	return out
}
