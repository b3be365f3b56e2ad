package console

import (
	"fmt"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// newTerminal opens a pseudo-terminal and returns its terminal end.
func newTerminal(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty
}

// isRaw says whether the terminal is in raw mode (no echo, no line editing).
func isRaw(t *testing.T, tty *os.File) bool {
	t.Helper()
	tios, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tios.Lflag&(unix.ECHO|unix.ICANON) == 0
}

// TestTerminalHold: Release restores a terminal left raw; so does the guard when this program ends
// without Release (its pipe closes, as a SIGKILL closes it); and a guard told "done" restores
// nothing (the shell's own settings, made after Release, are not undone later).
func TestTerminalHold(t *testing.T) {
	for _, tc := range []struct {
		name       string
		end        func(h *TerminalHold)
		wantCooked bool
	}{
		{"released", func(h *TerminalHold) { h.Release() }, true},
		{"killed", func(h *TerminalHold) { h.tell.Close(); h.guard.Wait() }, true},
		{"told done, the guard restores nothing", func(h *TerminalHold) {
			io.WriteString(h.tell, "done\n")
			h.tell.Close()
			h.guard.Wait()
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tty := newTerminal(t)
			h := HoldTerminal(tty)
			if h.guard == nil {
				t.Fatal("no guard started (sh and stty are needed)")
			}
			if _, err := term.MakeRaw(int(tty.Fd())); err != nil || !isRaw(t, tty) {
				t.Fatalf("raw mode: %v", err)
			}
			tc.end(h)
			if cooked := !isRaw(t, tty); cooked != tc.wantCooked {
				t.Errorf("terminal cooked: %v, want %v", cooked, tc.wantCooked)
			}
		})
	}
}

// TestTerminalHoldNotATerminal: a pipe is left alone and gets no guard.
func TestTerminalHoldNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	h := HoldTerminal(r)
	if h.guard != nil || h.state != nil {
		t.Errorf("a pipe got a hold: %+v", h)
	}
	h.Release()
}
