package lab

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/simple-uml/simple-uml/build/files"
)

// A guest's console is its kernel's standard input and output, which the lab holds. To let a person
// in while the lab runs, each guest's console is also served on a unix socket in the lab's private
// socket folder (mode 0700: only its user connects): what the guest prints goes to everyone
// attached, what they type goes to the guest. Attach is the other end, on a terminal.

// consoleHub passes a guest's console output to the people attached to it.
type consoleHub struct {
	mu      sync.Mutex
	viewers map[net.Conn]chan []byte
}

func newConsoleHub() *consoleHub { return &consoleHub{viewers: map[net.Conn]chan []byte{}} }

// Write passes p to every viewer. A viewer too slow to keep up is let go rather than stall the
// guest's console (and with it the lab's own commands).
func (h *consoleHub) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, ch := range h.viewers {
		select {
		case ch <- bytes.Clone(p):
		default:
			close(ch)
			delete(h.viewers, c)
		}
	}
	return len(p), nil
}

func (h *consoleHub) add(c net.Conn) chan []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan []byte, 256)
	h.viewers[c] = ch
	return ch
}

// closeAll lets every viewer go: the guest is gone.
func (h *consoleHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, ch := range h.viewers {
		close(ch)
		c.Close()
		delete(h.viewers, c)
	}
}

func (h *consoleHub) remove(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.viewers[c]; ok {
		close(ch)
		delete(h.viewers, c)
	}
}

// ConsoleSocket is where a guest's console is served while the lab runs.
func (r *Running) ConsoleSocket(guest string) string { return consoleSocket(r.sockets.Path, guest) }

func consoleSocket(sockets, guest string) string { return filepath.Join(sockets, guest+".console") }

// RecordFile is where the running lab name records its socket folder and the token its consoles
// want, in runDir, for AttachGuest from another process (`mage labConsole`). runDir must be a folder
// no guest's sandbox reaches.
func RecordFile(runDir, name string) string { return filepath.Join(runDir, "lab-"+name+".sockets") }

// Record writes r's RecordFile in runDir, mode 0600 (its token lets the reader type into the
// guests), and returns its path; the caller removes it when the lab stops.
func (r *Running) Record(runDir string) (string, error) {
	path := RecordFile(runDir, r.Lab.Name)
	return path, files.WriteBytes(path, []byte(r.sockets.Path+"\n"+r.token+"\n"), 0o600)
}

// AttachGuest attaches the terminal in/out to the console of guest in the running lab l, which its
// RecordFile in runDir says where to find, until Ctrl-].
func AttachGuest(ctx context.Context, runDir string, l *Lab, guest string, in *os.File, out io.Writer) error {
	data, err := os.ReadFile(RecordFile(runDir, l.Name))
	if err != nil {
		return fmt.Errorf("lab %s is not running here (start it with `go tool mage lab %s`): %w", l.Name, l.Name, err)
	}
	if !slices.ContainsFunc(l.Guests, func(g Guest) bool { return g.Name == guest }) {
		return fmt.Errorf("lab %s has no guest %q", l.Name, guest)
	}
	sockets, token, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
	return Attach(ctx, consoleSocket(sockets, guest), token, in, out)
}

// serveConsole serves g's console on its socket until the listener is closed.
func (r *Running) serveConsole(g *guestRun) error {
	ln, err := net.Listen("unix", r.ConsoleSocket(g.spec.Name))
	if err != nil {
		return err
	}
	g.consoleListener = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.attachViewer(g, c)
		}
	}()
	return nil
}

// attachViewer joins one connection to g's console until either side ends, once it has sent the
// lab's token: the socket's folder is private to the lab's user, but the guests' kernels run as that
// user too, and Landlock does not mediate connecting to a unix socket by path; they cannot read the
// token, which lives outside their sandbox.
func (r *Running) attachViewer(g *guestRun, c net.Conn) {
	defer c.Close()
	if !r.authorized(c) {
		return
	}
	if _, err := io.WriteString(c, consoleAck); err != nil {
		return
	}
	out := g.hub.add(c)
	defer g.hub.remove(c)
	go func() {
		for p := range out {
			if _, err := c.Write(p); err != nil {
				c.Close()
				return
			}
		}
		c.Close()
	}()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if err := g.vm.Send(string(buf[:n])); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// consoleAck is the server's answer to the right token, before the console itself.
const consoleAck = "suml-console ok\n"

// authorized reads the token line a client sends first, giving it a few seconds.
func (r *Running) authorized(c net.Conn) bool {
	line := make([]byte, len(r.token)+1)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(c, line); err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(line, []byte(r.token+"\n")) == 1
}

// escapeKey leaves an attached console (Ctrl-]), as in telnet: Ctrl-C and Ctrl-D belong to the guest.
const escapeKey = 0x1d

// Attach connects the terminal in/out to the console served at socket, sending the lab's token first,
// until the person presses Ctrl-] or the lab stops. The terminal is in raw mode meanwhile and
// restored afterwards.
func Attach(ctx context.Context, socket, token string, in *os.File, out io.Writer) error {
	c, err := net.Dial("unix", socket)
	if err != nil {
		return fmt.Errorf("console %s: %w (is the lab running? `go tool mage lab <name>` starts it)", socket, err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, token+"\n"); err != nil {
		return fmt.Errorf("console %s: %w", socket, err)
	}
	ack := make([]byte, len(consoleAck))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, ack); err != nil || string(ack) != consoleAck {
		return fmt.Errorf("console %s: the lab refused this client (its token is not the running lab's: was the lab restarted?)", socket)
	}
	c.SetReadDeadline(time.Time{})
	if fd := int(in.Fd()); term.IsTerminal(fd) {
		state, err := term.MakeRaw(fd)
		if err != nil {
			return err
		}
		defer term.Restore(fd, state)
	}
	fmt.Fprint(out, "connected; Ctrl-] leaves the console (the guest keeps running)\r\n")
	done := make(chan error, 2)
	go func() {
		_, err := io.Copy(out, c)
		done <- err
	}()
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := in.Read(buf)
			if i := bytes.IndexByte(buf[:n], escapeKey); i >= 0 {
				c.Write(buf[:i])
				done <- nil
				return
			}
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					done <- werr
					return
				}
			}
			if err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-done:
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	}
}
