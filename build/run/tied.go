package run

import (
	"os/exec"
	goruntime "runtime"
	"sync"
	"syscall"
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
// is started from a thread of its own, held (parked, nothing else runs on it) until Wait has reaped
// the process. That thread has all of this program's rights: a process that confines itself (a
// guest's kernel, through uml's confining start) does so between its start and its exec, never on a
// thread of ours, which its sandbox would then let it signal or trace.
func StartTied(cmd *exec.Cmd) (*Tied, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	t := &Tied{cmd: cmd, reaped: make(chan struct{})}
	started := make(chan error, 1)
	go t.hold(started)
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
// reaped; the goroutine then returns still locked, and Go ends the thread (or parks it for good, if
// it is the main thread).
func (t *Tied) hold(started chan<- error) {
	goruntime.LockOSThread()
	if err := t.cmd.Start(); err != nil {
		started <- err
		return
	}
	started <- nil
	<-t.reaped
}
