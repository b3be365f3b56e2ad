package run

import (
	"fmt"
	"os/exec"
	goruntime "runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Tied is a process started by StartTied, which dies with this program.
type Tied struct {
	cmd    *exec.Cmd
	reaped chan struct{} // closed once Wait has reaped the process: its starting thread may go
	once   sync.Once
}

// StartTied starts cmd with SIGKILL as its parent-death signal, so that it ends with this program
// whatever ends it: a kill -9 leaves no time to stop anything, and a process that outlives us runs
// on unsupervised. Linux sends that signal when the thread that started the process ends, not the
// process (golang/go#27505), and Go ends a thread whenever a goroutine locked to it returns; so cmd
// is started from a thread of its own, held until Wait has reaped the process.
//
// confine, when not nil, runs first on that thread, and what it sets there (Landlock, a system-call
// filter, capabilities, a priority) the process inherits while the rest of this program keeps its
// rights. No other goroutine runs on that thread, and Go ends it once the process is reaped. While
// it is held, it shares the process's Landlock domain, in which a process may trace its own kind: so
// a confined start makes this program non-dumpable first, which keeps every process without
// CAP_SYS_PTRACE from tracing it or reading its memory.
func StartTied(cmd *exec.Cmd, confine func() error) (*Tied, error) {
	if confine != nil {
		if err := untraceable(); err != nil {
			return nil, err
		}
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	t := &Tied{cmd: cmd, reaped: make(chan struct{})}
	started := make(chan error, 1)
	go t.hold(confine, started)
	if err := <-started; err != nil {
		return nil, err
	}
	return t, nil
}

// Wait waits for the process as exec.Cmd.Wait does, then lets its starting thread go.
func (t *Tied) Wait() error {
	err := t.cmd.Wait()
	t.once.Do(func() { close(t.reaped) })
	return err
}

// hold starts the process on this goroutine's own thread and keeps the thread until the process is
// reaped; the goroutine then returns still locked, and Go ends the thread, restrictions and all.
func (t *Tied) hold(confine func() error, started chan<- error) {
	goruntime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// Go never ends the main thread. Keep it busy while another thread starts cmd, then let it go.
		inner := make(chan error, 1)
		go t.hold(confine, inner)
		started <- <-inner
		goruntime.UnlockOSThread()
		return
	}
	if confine != nil {
		if err := confine(); err != nil {
			started <- err
			return
		}
	}
	if err := t.cmd.Start(); err != nil {
		started <- err
		return
	}
	started <- nil
	<-t.reaped
}

var untraceableOnce = sync.OnceValue(func() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("make this program non-dumpable (prctl PR_SET_DUMPABLE): %w", err)
	}
	return nil
})

// untraceable makes this process non-dumpable, for good: its threads that start confined processes
// come and go, and a later one may be held while another ends.
func untraceable() error { return untraceableOnce() }
