package console

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"time"

	"golang.org/x/term"
)

// TerminalHold keeps a terminal's settings from before a program (UML's console, Attach) puts it in
// raw mode, to restore them afterwards.
type TerminalHold struct {
	fd    int
	state *term.State
	guard *exec.Cmd      // restores the settings if this program dies first; nil without one
	tell  io.WriteCloser // the guard's stdin: "done" when this program restores them itself
}

// guardScript is the guard: it saves the terminal's settings (fd 3), says so, and restores them
// unless this program says "done" before its end closes the pipe. A SIGKILL leaves this program no
// time to restore a raw terminal, which would then eat the person's next keystrokes. The guard
// ignores the terminal's signals (Ctrl-C belongs to what runs on it) and SIGTTOU, which it would
// get for restoring once the shell has taken the terminal back.
const guardScript = `trap '' INT QUIT TSTP HUP TTOU
saved=$(stty -g <&3) || exit 1
echo armed
read -r word
[ "$word" = done ] || stty "$saved" <&3`

// HoldTerminal saves the settings of f, when f is a terminal, and starts the guard. Without sh and
// stty there is no guard: Release still restores the settings, unless this program is killed.
func HoldTerminal(f *os.File) *TerminalHold {
	h := &TerminalHold{fd: int(f.Fd())}
	if !term.IsTerminal(h.fd) {
		return h
	}
	state, err := term.GetState(h.fd)
	if err != nil {
		return h
	}
	h.state = state
	h.guard, h.tell = startGuard(f)
	return h
}

// startGuard starts the guard on f and waits (up to 2 s) for it to have saved the settings.
func startGuard(f *os.File) (*exec.Cmd, io.WriteCloser) {
	cmd := exec.Command("sh", "-c", guardScript)
	cmd.ExtraFiles = []*os.File{f}
	tell, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil
	}
	said, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil
	}
	if err := cmd.Start(); err != nil {
		return nil, nil
	}
	armed := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(said).ReadString('\n')
		armed <- line == "armed\n"
	}()
	select {
	case ok := <-armed:
		if ok {
			return cmd, tell
		}
	case <-time.After(2 * time.Second):
	}
	cmd.Process.Kill()
	tell.Close()
	cmd.Wait()
	return nil, nil
}

// Release restores the settings and lets the guard go.
func (h *TerminalHold) Release() {
	if h.guard != nil {
		io.WriteString(h.tell, "done\n")
		h.tell.Close()
		h.guard.Wait()
	}
	if h.state != nil {
		term.Restore(h.fd, h.state)
	}
}
