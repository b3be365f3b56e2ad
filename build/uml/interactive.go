package uml

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/simple-uml/simple-uml/build/console"
)

// Interactive boots with the console on the given terminal (a person types into the guest) and
// returns when the kernel exits. UML puts the terminal in raw mode, so Ctrl-C goes to the guest; the
// terminal's settings are restored afterwards whatever happened (a panic, cancellation, a SIGKILL of
// this program: console.HoldTerminal).
func Interactive(ctx context.Context, o Options, stdin *os.File, stdout io.Writer) error {
	rt, err := prepare(o)
	if err != nil {
		return err
	}
	defer rt.release()
	return foreground(ctx, append([]string{o.Kernel}, rt.args...), o, rt, false, stdin, stdout)
}

// Debug runs the boot under gdb: the signal settings UML needs (it uses SIGSEGV and SIGUSR1
// itself), gdbArgs, then --args, the kernel and its command line.
func Debug(ctx context.Context, o Options, gdbArgs []string, stdin *os.File, stdout io.Writer) error {
	rt, err := prepare(o)
	if err != nil {
		return err
	}
	defer rt.release()
	argv := append([]string{"gdb", "-q", "-ex", "handle SIGSEGV pass nostop noprint", "-ex", "handle SIGUSR1 pass nostop noprint"}, gdbArgs...)
	argv = append(append(argv, "--args", o.Kernel), rt.args...)
	o.Sandbox = SandboxOff // gdb traces the kernel and reads the host's sources and symbols
	return foreground(ctx, argv, o, rt, true, stdin, stdout)
}

// foreground runs argv on the terminal and restores the terminal's settings afterwards. underGDB:
// argv is gdb, and the kernel its child.
func foreground(ctx context.Context, argv []string, o Options, rt *runtime, underGDB bool, stdin *os.File, stdout io.Writer) error {
	defer console.HoldTerminal(stdin).Release()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stdout
	cmd.Env = kernelEnv(rt.dir)
	// The kernel stays in our process group, the terminal's foreground group, so it may read the
	// terminal; on cancellation it gets SIGTERM (UML then stops its helpers itself, and release kills
	// what it started too late to stop), then SIGKILL, soon enough for the cleanup to end within the 5 seconds mage gives a cancelled target.
	tied, err := startConfined(cmd, o, rt)
	if err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	rt.admitKernel(cmd.Process.Pid, underGDB)
	done := make(chan error, 1)
	go func() { done <- tied.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		return fmt.Errorf("%s: %w", filepath.Base(argv[0]), ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("%s ended with %v", filepath.Base(argv[0]), err)
	}
	return nil
}
