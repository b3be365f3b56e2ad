package instance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/simple-uml/simple-uml/build/console"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/lock"
	"github.com/simple-uml/simple-uml/build/uml"
)

// SuperviseVar, in the environment of this program, makes it the supervisor of the instance in that
// folder (SuperviseMain) rather than what it is otherwise: Up starts a copy of this program so.
const SuperviseVar = "SUML_SUPERVISE"

// consoleLogMax bounds an instance's console log: past it, console.log becomes console.log.1 (the
// one before is dropped), so that a guest printing without end fills no disk.
const consoleLogMax = 1 << 20

func newToken() string { return rand.Text() }

// SuperviseMain runs the supervisor of the instance in dir until stop (SIGTERM) or until its guest
// ends for good, and returns the exit status. A closed terminal is nothing to it (SIGHUP ignored).
// echo, when not nil, gets the console too (a container's standard output).
func SuperviseMain(dir string, echo io.Writer) int { return superviseMain(dir, nil, echo) }

// superviseMain is SuperviseMain booting spec, when not nil, rather than the folder's.
func superviseMain(dir string, spec *Spec, echo io.Writer) int {
	// A closed terminal is caught and dropped, not ignored: an ignored signal stays ignored in what
	// this starts (the guest's kernel).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	os.Unsetenv(SuperviseVar) // the guest's kernel inherits this environment
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if err := Supervise(ctx, dir, spec, echo); err != nil {
		fmt.Fprintf(os.Stderr, "%s supervisor: %v\n", time.Now().Format(time.RFC3339), err)
		return 1
	}
	return 0
}

// supervisor is one instance's supervisor at work.
type supervisor struct {
	dir   string
	spec  Spec
	state State
	hub   *console.Hub
	log   *files.RotatingLog
	mu    sync.Mutex
	vm    *uml.Guest // the guest running now, or nil
	echo  io.Writer  // gets the console too, or nil
}

// Supervise boots the instance in dir and boots it again as its restart policy says, until ctx ends
// (stop) or the guest ends for good. It holds the instance's lock meanwhile: one supervisor per
// instance. spec, when not nil, is what it boots (a container image's, which whoever writes the
// folder, a volume, cannot change); nil boots the folder's. echo, when not nil, gets the console too.
func Supervise(ctx context.Context, dir string, spec *Spec, echo io.Writer) error {
	// A ps or stop that asks whether the lock is held holds it for a moment: wait a second.
	waitCtx, cancel := context.WithTimeout(ctx, time.Second)
	held, err := lock.Acquire(waitCtx, filepath.Join(dir, lockFile), "the instance's supervisor", io.Discard)
	cancel()
	if err != nil {
		return fmt.Errorf("the instance's supervisor runs already (%w)", err)
	}
	defer held.Release()
	s := &supervisor{dir: dir, hub: console.NewHub(), echo: echo, state: State{Phase: PhaseStarting, Supervisor: os.Getpid()}}
	if err := s.setPhase(PhaseStarting, ""); err != nil { // says its pid before anything else
		return err
	}
	if spec != nil {
		s.spec = *spec
	} else if s.spec, err = readSpec(dir); err != nil {
		return err
	}
	s.log = &files.RotatingLog{Path: filepath.Join(dir, consoleFile), Max: consoleLogMax}
	defer s.log.Close()
	ln, err := s.serveConsole()
	if err != nil {
		return err
	}
	defer ln.Close()
	defer s.hub.CloseAll()
	return s.run(ctx)
}

// run is the boot loop: a guest that ends comes back after a pause that doubles up to 30 s, and
// starts again from 1 s once a boot has run a minute.
func (s *supervisor) run(ctx context.Context) error {
	pause := time.Second
	for {
		started := time.Now()
		phase, reason, err := s.bootOnce(ctx)
		if err != nil {
			phase, reason = PhaseCrashed, err.Error()
		}
		if ctx.Err() != nil {
			return s.setPhase(PhaseStopped, "")
		}
		if !s.spec.Restart.again(phase) {
			return s.setPhase(phase, reason)
		}
		fmt.Fprintf(s.log, "\r\n[simple-uml: the %s %s (%s); restart %s: booting it again]\r\n", s.spec.Kind(), phase, reason, s.spec.Restart)
		// Meanwhile the state says so, and names no kernel that has ended.
		if err := s.setPhase(PhaseStarting, "after "+phase+": "+reason); err != nil {
			return err
		}
		if time.Since(started) > time.Minute {
			pause = time.Second
		}
		select {
		case <-ctx.Done():
			return s.setPhase(PhaseStopped, "")
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
		s.mu.Lock()
		s.state.Restarts++
		s.mu.Unlock()
	}
}

// bootOnce boots the guest and returns how it ended: PhaseExited (powered off), PhaseCrashed and
// why, or PhaseStopped when ctx ended.
func (s *supervisor) bootOnce(ctx context.Context) (string, string, error) {
	if s.spec.Lab != nil {
		return s.bootLab(ctx)
	}
	o := s.spec.Options
	o.Umid = uml.InstanceUmid + s.spec.Name // a boot refused its COW file names this instance
	o.Console = console.Tee{s.hub, s.log}
	if s.echo != nil {
		o.Console = console.Tee{s.echo, s.hub, s.log}
	}
	// Not ctx: a stop must reach a guest that still runs, to settle its disk before it ends (below).
	vm, err := uml.Start(context.WithoutCancel(ctx), o)
	if err != nil {
		return "", "", err
	}
	s.setGuest(vm)
	defer s.setGuest(nil)
	if err := s.setPhase(PhaseStarting, ""); err != nil {
		vm.Stop()
		return "", "", err
	}
	go s.awaitReady(ctx, vm)
	select {
	case <-ctx.Done():
		s.settle(vm)
		vm.Stop()
		return PhaseStopped, "", nil
	case <-vm.Done():
	}
	if err := vm.Wait(time.Second); err != nil { // it has ended: this reads how
		var failure *uml.Error
		if errors.As(err, &failure) {
			return PhaseCrashed, failure.Reason, nil
		}
		return PhaseCrashed, err.Error(), nil
	}
	return PhaseExited, "powered off", nil
}

// settle has vm write what it holds to its disk before it is stopped: the instance keeps the disk,
// and a file written just before (sshd's host keys at its first start) must be on it.
func (s *supervisor) settle(vm *uml.Guest) {
	if err := vm.Settle(uml.SettleTimeout); err != nil {
		fmt.Fprintf(s.log, "\r\n[simple-uml: stopping without the guest's disk settled: %v]\r\n", err)
	}
}

// awaitReady marks the instance ready once vm's console prints the ready text.
func (s *supervisor) awaitReady(ctx context.Context, vm *uml.Guest) {
	timeout := s.spec.Options.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	if _, err := vm.Expect(ctx, s.spec.Ready, timeout); err == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.vm == vm && s.state.Phase == PhaseStarting { // not a guest that has ended meanwhile
			s.state.Phase = PhaseReady
			writeState(s.dir, s.state)
		}
	}
}

// setGuest records vm as the guest running now (nil: none).
func (s *supervisor) setGuest(vm *uml.Guest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vm = vm
	s.state.Kernel = 0
	if vm != nil {
		s.state.Kernel, s.state.Started = vm.Pid(), time.Now()
	}
}

// send types text into the running guest's console.
func (s *supervisor) send(text string) error {
	s.mu.Lock()
	vm := s.vm
	s.mu.Unlock()
	if vm == nil {
		return errors.New("the guest is down")
	}
	return vm.Send(text)
}

func (s *supervisor) setPhase(phase, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.Phase, s.state.Reason = phase, reason
	return writeState(s.dir, s.state)
}

// serveConsole serves the guest's console on the instance's socket to clients with its token.
func (s *supervisor) serveConsole() (net.Listener, error) {
	token, err := os.ReadFile(filepath.Join(s.dir, tokenFile))
	if err != nil {
		return nil, err
	}
	socket := filepath.Join(s.dir, socketFile)
	os.Remove(socket) // a killed supervisor's
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, err
	}
	console.Serve(ln, strings.TrimSpace(string(token)), s.hub, s.send)
	return ln, nil
}

// running says whether dir's supervisor runs: it holds the lock.
func running(dir string) bool { return lock.Held(filepath.Join(dir, lockFile)) }
