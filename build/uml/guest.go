package uml

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/peer"
	"github.com/simple-uml/simple-uml/build/run"
	"github.com/simple-uml/simple-uml/build/usernet"
)

// Guest is a running UML kernel whose console the caller reads and writes: expect a marker, send a
// line, run a shell command and read its status.
type Guest struct {
	ctx     context.Context
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	console *consoleBuffer
	start   time.Time
	done    chan struct{} // closed when the process has exited
	waitErr error
	rt      *runtime
	mu      sync.Mutex
	pos     int // console offset Expect has consumed
	seq     int // Run's marker counter
}

// Start boots the kernel with its console on a pipe. Stop (or Wait) must be called to release it.
func Start(ctx context.Context, o Options) (*Guest, error) {
	g := &Guest{ctx: ctx, console: newConsoleBuffer(o.Console), done: make(chan struct{})}
	rt, err := prepare(o)
	if err != nil {
		return nil, err
	}
	g.rt = rt
	args, umlDir := rt.args, rt.dir
	g.cmd = exec.Command(o.Kernel, args...)
	g.cmd.Stdout, g.cmd.Stderr = g.console, g.console
	g.cmd.Env = kernelEnv(umlDir)
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A helper that outlives the kernel may hold the console pipe open; don't wait on it for long
	// (Stop kills the whole group afterwards).
	g.cmd.WaitDelay = 2 * time.Second
	if g.stdin, err = g.cmd.StdinPipe(); err != nil {
		g.release()
		return nil, err
	}
	g.start = time.Now()
	tied, err := startConfined(g.cmd, o, rt)
	if err != nil {
		g.release()
		return nil, fmt.Errorf("start %s: %w", o.Kernel, err)
	}
	if rt.network != nil {
		rt.network.Admit(g.IsKernel)
	}
	go func() {
		g.waitErr = tied.Wait()
		close(g.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			g.kill()
		case <-g.done:
		}
	}()
	return g, nil
}

// IsKernel says whether pid is this guest's kernel process, still running: a stopped kernel's pid may
// be another process's now. The servers the kernel connects to admit it by this.
func (g *Guest) IsKernel(pid int) bool {
	select {
	case <-g.done:
		return false
	default:
		return pid == g.cmd.Process.Pid
	}
}

// Done is closed when the kernel has exited, by itself or stopped.
func (g *Guest) Done() <-chan struct{} { return g.done }

// Elapsed is the time since the kernel started.
func (g *Guest) Elapsed() time.Duration { return time.Since(g.start) }

// Console returns everything the guest has printed so far.
func (g *Guest) Console() string { return g.console.String() }

// Expect waits until the console, after what earlier Expects consumed, contains pattern, and returns
// that stretch of console. It fails on timeout, on a kernel panic and when the kernel exits first.
func (g *Guest) Expect(ctx context.Context, pattern string, timeout time.Duration) (string, error) {
	text, _, err := g.ExpectAny(ctx, timeout, pattern)
	return text, err
}

// skipConsole has the next Expect look only at what the guest prints from now on.
func (g *Guest) skipConsole() {
	text, dropped, _ := g.console.snapshot()
	g.mu.Lock()
	g.pos = dropped + len(text)
	g.mu.Unlock()
}

// kernelPanic on the console ends every wait: the guest is gone.
const kernelPanic = "Kernel panic"

// ExpectAny is Expect for the first of several patterns to appear; it returns which one did.
func (g *Guest) ExpectAny(ctx context.Context, timeout time.Duration, patterns ...string) (string, int, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	pattern := strings.Join(patterns, `" or "`)
	longest := 0
	for _, p := range patterns {
		longest = max(longest, len(p))
	}
	// scanned is how much of all the output has been searched in vain: each wake searches only what
	// came since (and a pattern's length back), so that a flood costs a pass over it, not one over
	// the whole buffer per write.
	scanned := -1
	for {
		text, dropped, changed := g.console.snapshot()
		g.mu.Lock()
		// g.pos counts all the output so far; text starts at dropped.
		pos := max(g.pos-dropped, 0)
		g.mu.Unlock()
		// resume is where a search for a string of length n starts, at floor or after: a string's
		// length back from what was searched already.
		resume := func(floor, n int) int {
			if scanned < 0 {
				return floor
			}
			return min(max(floor, scanned-dropped-n+1), len(text))
		}
		from := resume(pos, longest)
		first, which := -1, -1
		for k, p := range patterns {
			if i := strings.Index(text[from:], p); i >= 0 && (first < 0 || i < first) {
				first, which = i, k
			}
		}
		if which >= 0 {
			end := from + first + len(patterns[which])
			g.mu.Lock()
			g.pos = dropped + end
			g.mu.Unlock()
			return text[pos:end], which, nil
		}
		panicFrom := resume(pos, len(kernelPanic)) // what an earlier Expect consumed was no panic, or it would have failed
		scanned = dropped + len(text)
		if strings.Contains(text[panicFrom:], kernelPanic) {
			return "", -1, g.fail("kernel panic")
		}
		select {
		case <-changed:
		case <-g.done:
			// Drain what was written just before the exit, then decide.
			if text2, dropped2, _ := g.console.snapshot(); text2 != text || dropped2 != dropped {
				continue
			}
			return "", -1, g.fail(fmt.Sprintf("the kernel exited (%v) without printing \"%s\"", g.exitStatus(), pattern))
		case <-deadline.C:
			return "", -1, g.fail(fmt.Sprintf("timed out after %s waiting for \"%s\"", timeout, pattern))
		case <-ctx.Done():
			return "", -1, g.fail("cancelled while waiting for \"" + pattern + "\"")
		}
	}
}

// Send writes text to the guest's console.
func (g *Guest) Send(text string) error {
	_, err := io.WriteString(g.stdin, text)
	return err
}

// Run types a shell command on the console (a shell must be reading it) and returns its output and
// exit status. The end marker is split in the typed line so the echo of the command cannot match it.
func (g *Guest) Run(ctx context.Context, command string, timeout time.Duration) (string, int, error) {
	g.mu.Lock()
	g.seq++
	n := g.seq
	g.mu.Unlock()
	begin, end := fmt.Sprintf("SUML-BEGIN-%d:", n), fmt.Sprintf("SUML-END-%d:", n)
	// One line, so the echo of the typed line comes before the begin marker's output; eval lets any
	// command stand in it, including one that ends in "&".
	line := fmt.Sprintf("echo SUML-BEGIN\"\"-%d:; eval %s; echo SUML-END\"\"-%d:$?:\n", n, run.Quote(command), n)
	if err := g.Send(line); err != nil {
		return "", -1, err
	}
	if _, err := g.Expect(ctx, begin, timeout); err != nil {
		return "", -1, err
	}
	out, err := g.Expect(ctx, end, timeout)
	if err != nil {
		return "", -1, err
	}
	rest, err := g.Expect(ctx, ":", timeout)
	if err != nil {
		return "", -1, err
	}
	status, err := strconv.Atoi(strings.TrimSuffix(rest, ":"))
	if err != nil {
		return "", -1, fmt.Errorf("command %q: unreadable status %q", command, rest)
	}
	out = strings.TrimSuffix(out, end)
	out = strings.ReplaceAll(out, "\r\n", "\n")
	return strings.TrimSpace(out), status, nil
}

// Wait waits up to timeout for the kernel to exit by itself, then stops it. It reports a panic or a
// non-zero exit as an *Error.
func (g *Guest) Wait(timeout time.Duration) error {
	select {
	case <-g.done:
	case <-time.After(timeout):
		g.Stop()
		return g.fail(fmt.Sprintf("did not power off within %s", timeout))
	}
	g.Stop()
	out := g.Console()
	switch {
	case strings.Contains(out, kernelPanic):
		return g.fail("kernel panic")
	case g.waitErr != nil && !errors.Is(g.waitErr, exec.ErrWaitDelay):
		// ErrWaitDelay: the kernel exited cleanly and a leftover helper held the console open.
		return g.fail("kernel exited: " + g.waitErr.Error())
	}
	return nil
}

// Stop kills the kernel and every process of its group (UML's helpers), waits for it and removes its
// runtime files. It is safe to call more than once.
func (g *Guest) Stop() {
	g.kill()
	<-g.done
	g.release()
}

func (g *Guest) kill() {
	if g.cmd != nil && g.cmd.Process != nil {
		_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (g *Guest) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rt != nil {
		g.rt.release()
		g.rt = nil
	}
}

// runtime is what one boot needs outside the kernel: its private directory and its network.
type runtime struct {
	dir     string
	own     *files.PrivateDir // dir, when prepare made it
	network *usernet.Network
	args    []string
	umid    string // the kernel's machine id: its management console's folder in dir
	// unconfined is set when the sandbox was asked for but the host has no Landlock.
	unconfined bool
}

// RunFolderPrefix starts the name of a boot's run folder (files.PrivateDir) in $TMPDIR.
const RunFolderPrefix = "simple-uml-run-"

// prepare makes the runtime directory, builds the command line and starts the guest's network.
func prepare(o Options) (*runtime, error) {
	if o.COW != "" {
		if err := cowInUse(o.COW); err != nil {
			return nil, err
		}
	}
	own, err := files.NewPrivateDir("", RunFolderPrefix, killLeftKernels)
	if err != nil {
		return nil, err
	}
	dir := own.Path
	rt := &runtime{dir: dir, own: own}
	if err := os.Mkdir(filepath.Join(dir, mconsoleClients), 0o700); err != nil {
		rt.release()
		return nil, err
	}
	o.Umid = o.umid()
	rt.umid = o.Umid
	if rt.args, err = o.args(dir); err != nil {
		rt.release()
		return nil, err
	}
	if o.COW != "" && o.Image != "" && !files.Exists(o.COW) {
		if err := createCOW(o.COW, o.Image); err != nil {
			rt.release()
			return nil, err
		}
	}
	if rt.network, err = o.Net.start(dir); err != nil {
		rt.release()
		return nil, err
	}
	return rt, nil
}

// admitKernel lets the kernel process pid join the guest's user network, and nobody else, for a
// boot on the terminal (a Guest admits by IsKernel). underGDB: pid is gdb, and the kernel its child.
func (rt *runtime) admitKernel(pid int, underGDB bool) {
	if rt.network == nil {
		return
	}
	if underGDB {
		rt.network.Admit(func(p int) bool { parent, err := peer.Parent(p); return err == nil && parent == pid })
		return
	}
	rt.network.Admit(func(p int) bool { return p == pid })
}

func (rt *runtime) release() {
	// The kernel has exited; a helper it was starting may not have (a kernel stopped by SIGTERM
	// during its start-up checks leaves their ptraced child stopped, in the terminal's group).
	killLeftKernels(rt.dir)
	if rt.network != nil {
		rt.network.Close()
	}
	if rt.own != nil {
		rt.own.Remove()
	}
}

func (g *Guest) exitStatus() string {
	if g.waitErr != nil {
		return g.waitErr.Error()
	}
	return "status 0"
}

func (g *Guest) fail(reason string) error {
	if g.ctx.Err() != nil {
		reason = "cancelled (" + reason + ")"
	}
	return &Error{Reason: reason, Console: g.Console()}
}

// ConsoleKept is how much of a guest's latest console output is kept in memory: the guest decides
// how much it prints, so the rest goes (the log file, when there is one, has it all, up to its own
// bound). Enough for a KUnit run of thousands of tests.
const ConsoleKept = 8 << 20

// ConsoleLogged is how much of a guest's console its log file keeps: the first part, boot and all,
// then a line saying that the rest was not kept. A guest that prints without end fills no disk.
const ConsoleLogged = 64 << 20

// ConsoleLog is a guest's console log on w (a file), bounded by ConsoleLogged.
func ConsoleLog(w io.Writer) io.Writer { return &consoleLog{w: w} }

type consoleLog struct {
	w       io.Writer
	written int
}

func (l *consoleLog) Write(p []byte) (int, error) {
	if l.written >= ConsoleLogged {
		return len(p), nil
	}
	n := len(p)
	if room := ConsoleLogged - l.written; len(p) > room {
		p = append(p[:room:room], fmt.Sprintf("\n[simple-uml: this log stops at %d MiB; the guest printed more]\n", ConsoleLogged>>20)...)
	}
	l.written += len(p)
	if _, err := l.w.Write(p); err != nil {
		return 0, err
	}
	return n, nil
}

// consoleBuffer collects console output, the last ConsoleKept bytes of it; snapshot returns the text,
// the offset of its first byte in all the output so far, and a channel closed on the next write.
type consoleBuffer struct {
	mu      sync.Mutex
	buf     strings.Builder // its String() is no copy: snapshots are cheap, a flood or not
	dropped int             // bytes of output no longer kept
	changed chan struct{}
	copy    io.Writer
}

func newConsoleBuffer(copy io.Writer) *consoleBuffer {
	return &consoleBuffer{changed: make(chan struct{}), copy: copy}
}

func (c *consoleBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if c.buf.Len() > ConsoleKept {
		// Down to three quarters, so that a flood does not move the buffer on every write, into a
		// buffer that holds ConsoleKept without growing again.
		kept := c.buf.String()
		cut := len(kept) - ConsoleKept*3/4
		c.buf = strings.Builder{}
		c.buf.Grow(ConsoleKept)
		c.buf.WriteString(kept[cut:])
		c.dropped += cut
	}
	if c.copy != nil {
		c.copy.Write(p)
	}
	close(c.changed)
	c.changed = make(chan struct{})
	return len(p), nil
}

func (c *consoleBuffer) snapshot() (string, int, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.dropped, c.changed
}

// String is the console output kept.
func (c *consoleBuffer) String() string {
	s, _, _ := c.snapshot()
	return s
}

// Pid is the kernel's process id, which is also its process group's.
func (g *Guest) Pid() int { return g.cmd.Process.Pid }

// killLeftKernels kills what a kernel left running with its run folder dir: the parent-death signal
// and SIGTERM reach the kernel process alone, and a UML helper it was starting at that moment may
// stay stopped for good (found by sending SIGKILL to simple-uml while a lab booted, and SIGTERM to
// mage boot during the kernel's start-up checks).
func killLeftKernels(dir string) {
	for _, pid := range RunFolderProcesses(dir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// RunFolderProcesses are the processes of this user that a kernel with the run folder dir runs (the
// kernel and its helpers: they name it on their command line, uml_dir=), in pid order.
func RunFolderProcesses(dir string) []int {
	needle := []byte("\x00uml_dir=" + dir + "\x00")
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		info, err := os.Stat(filepath.Join("/proc", e.Name()))
		if err != nil || int(info.Sys().(*syscall.Stat_t).Uid) != os.Getuid() {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(cmdline, needle) {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids
}
