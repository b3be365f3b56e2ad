// Package uml runs a User-Mode Linux kernel as an ordinary process: it builds the command line, puts
// the console on the process's stdin/stdout, keeps UML's runtime files in a private directory, and
// stops the whole process group on timeout or cancellation.
//
// Limits: one console (con0) is captured; interactive use and networking come with `mage boot`.
package uml

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options describes one boot.
type Options struct {
	Kernel  string        // the linux executable
	Image   string        // root filesystem image for ubd0
	Mem     string        // guest memory, e.g. 128M; empty means 128M
	Init    string        // init= in the guest; empty leaves the kernel's default
	Args    []string      // more kernel arguments
	Timeout time.Duration // for the whole run; 0 means one minute
	Until   string        // stop successfully as soon as the console prints this; empty waits for exit
}

// Result is what a boot printed and how long it took.
type Result struct {
	Console  string
	Duration time.Duration
}

// Error is a boot that failed, with the end of the console.
type Error struct {
	Reason  string
	Console string
}

func (e *Error) Error() string {
	lines := strings.Split(strings.TrimRight(e.Console, "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return fmt.Sprintf("UML boot failed: %s\n  console (last lines):\n    %s", e.Reason, strings.Join(lines, "\n    "))
}

// args returns the kernel command line for o, with runtime files under umlDir.
func (o Options) args(umlDir string) []string {
	mem := o.Mem
	if mem == "" {
		mem = "128M"
	}
	args := []string{"ubd0=" + o.Image, "root=/dev/ubda", "rw", "mem=" + mem, "con=null", "con0=fd:0,fd:1", "uml_dir=" + umlDir, "umid=simple-uml"}
	if o.Init != "" {
		args = append(args, "init="+o.Init)
	}
	return append(args, o.Args...)
}

// Boot runs the kernel until it exits (or prints Until), and fails on a panic, a timeout, or a non-zero
// exit. No process of the guest outlives the call.
func Boot(ctx context.Context, o Options) (Result, error) {
	timeout := o.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	umlDir, err := os.MkdirTemp("", "simple-uml-run-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(umlDir)

	console := &watchBuffer{until: o.Until, found: make(chan struct{})}
	cmd := exec.Command(o.Kernel, o.args(umlDir)...)
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start %s: %w", o.Kernel, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	kill := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	var waitErr error
	select {
	case waitErr = <-done:
	case <-console.found:
		kill()
		return Result{Console: console.String(), Duration: time.Since(start)}, nil
	case <-ctx.Done():
		kill()
		reason := "timed out after " + timeout.String()
		if errors.Is(ctx.Err(), context.Canceled) {
			reason = "cancelled"
		}
		return Result{}, &Error{Reason: reason, Console: console.String()}
	}
	// UML's helper processes share the group; make sure none is left.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	out := console.String()
	res := Result{Console: out, Duration: time.Since(start)}
	switch {
	case strings.Contains(out, "Kernel panic"):
		return res, &Error{Reason: "kernel panic", Console: out}
	case waitErr != nil:
		return res, &Error{Reason: "kernel exited: " + waitErr.Error(), Console: out}
	case o.Until != "" && !strings.Contains(out, o.Until):
		return res, &Error{Reason: fmt.Sprintf("the guest powered off without printing %q", o.Until), Console: out}
	}
	return res, nil
}

// watchBuffer collects console output and signals when a marker appears.
type watchBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	until string
	found chan struct{}
	seen  bool
}

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.until != "" && !w.seen && bytes.Contains(w.buf.Bytes(), []byte(w.until)) {
		w.seen = true
		close(w.found)
	}
	return len(p), nil
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
