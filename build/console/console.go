// Package console serves a guest's console to the people who attach to it while it runs, on a unix
// socket in a private folder (only its user connects), and attaches a terminal to one.
//
// A guest's console is its kernel's standard input and output, which the process that booted it
// holds: what the guest prints goes to everyone attached (Hub), what they type goes to the guest.
// Clients send a token first: the guests' kernels run as the same user, and Landlock before ABI 9
// does not mediate connecting to a unix socket by path; they cannot read the token, which lives
// outside their sandbox.
package console

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// Hub passes a guest's console output to the people attached to it.
type Hub struct {
	mu      sync.Mutex
	viewers map[net.Conn]chan []byte
}

// NewHub is a hub with no viewer yet.
func NewHub() *Hub { return &Hub{viewers: map[net.Conn]chan []byte{}} }

// Write passes p to every viewer. A viewer too slow to keep up is let go rather than stall the
// guest's console (and with it what else reads it).
func (h *Hub) Write(p []byte) (int, error) {
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

func (h *Hub) add(c net.Conn) chan []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan []byte, 256)
	h.viewers[c] = ch
	return ch
}

// CloseAll lets every viewer go: the guest is gone.
func (h *Hub) CloseAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, ch := range h.viewers {
		close(ch)
		c.Close()
		delete(h.viewers, c)
	}
}

func (h *Hub) remove(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.viewers[c]; ok {
		close(ch)
		delete(h.viewers, c)
	}
}

// Serve joins each connection to ln that sends token first to hub, and what it types to send, until
// ln is closed.
func Serve(ln net.Listener, token string, hub *Hub, send func(string) error) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go attachViewer(c, token, hub, send)
		}
	}()
}

// attachViewer joins one connection to the console until either side ends, once it has sent the
// token.
func attachViewer(c net.Conn, token string, hub *Hub, send func(string) error) {
	defer c.Close()
	if !authorized(c, token) {
		return
	}
	if _, err := io.WriteString(c, consoleAck); err != nil {
		return
	}
	out := hub.add(c)
	defer hub.remove(c)
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
			if err := send(string(buf[:n])); err != nil {
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
func authorized(c net.Conn, token string) bool {
	line := make([]byte, len(token)+1)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(c, line); err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(line, []byte(token+"\n")) == 1
}

// escapeKey leaves an attached console (Ctrl-]), as in telnet: Ctrl-C and Ctrl-D belong to the guest.
const escapeKey = 0x1d

// Attach connects the terminal in/out to the console served at socket, sending the token first,
// until the person presses Ctrl-] or the guest stops. The terminal is in raw mode meanwhile and
// restored afterwards.
func Attach(ctx context.Context, socket, token string, in *os.File, out io.Writer) error {
	c, err := net.Dial("unix", socket)
	if err != nil {
		return fmt.Errorf("console %s: %w (is the guest running?)", socket, err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, token+"\n"); err != nil {
		return fmt.Errorf("console %s: %w", socket, err)
	}
	ack := make([]byte, len(consoleAck))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, ack); err != nil || string(ack) != consoleAck {
		return fmt.Errorf("console %s: refused this client (its token is not the running guest's: was it restarted?)", socket)
	}
	c.SetReadDeadline(time.Time{})
	hold := HoldTerminal(in)
	defer hold.Release()
	if fd := int(in.Fd()); term.IsTerminal(fd) {
		if _, err := term.MakeRaw(fd); err != nil {
			return err
		}
	}
	fmt.Fprint(out, "connected; Ctrl-] leaves the console (the guest keeps running)\r\n")
	done := make(chan error, 2)
	go func() {
		_, err := io.Copy(out, c)
		done <- err
	}()
	stop := make(chan struct{})
	typing := make(chan struct{})
	go func() {
		defer close(typing)
		done <- copyKeys(c, in, stop)
	}()
	// The key reader ends before Attach returns: one left behind would take the next keystroke.
	defer func() { close(stop); <-typing }()
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

// copyKeys copies what is typed on in to c until Ctrl-] (nil), an error, or stop closes. It waits
// for in to be readable in slices of 100 ms rather than blocking in a read, so that it notices stop.
func copyKeys(c net.Conn, in *os.File, stop <-chan struct{}) error {
	buf := make([]byte, 1024)
	fd := int32(in.Fd())
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		ready, err := unix.Poll([]unix.PollFd{{Fd: fd, Events: unix.POLLIN}}, 100)
		if errors.Is(err, unix.EINTR) || err == nil && ready == 0 {
			continue
		} else if err != nil {
			return err
		}
		n, err := in.Read(buf)
		if i := bytes.IndexByte(buf[:n], escapeKey); i >= 0 {
			c.Write(buf[:i])
			return nil
		}
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return err
		}
	}
}

// Tee passes a guest's console to each writer whatever the others do: a console log that cannot be
// written (a full volume) must not silence a container's output or the attached consoles, as
// io.MultiWriter, which stops at the first error, would.
type Tee []io.Writer

func (t Tee) Write(p []byte) (int, error) {
	for _, w := range t {
		w.Write(p)
	}
	return len(p), nil
}
