package console

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServeAndAttach: a client with the token sees what the guest prints and types into it until
// Ctrl-]; one with the wrong token is refused and sees nothing.
func TestServeAndAttach(t *testing.T) {
	var typed lockedBuffer
	socket, hub := serveConsole(t, func(s string) error { typed.Write([]byte(s)); return nil })

	in, keys, _ := os.Pipe()
	defer keys.Close()
	var screen lockedBuffer
	done := make(chan error, 1)
	go func() { done <- Attach(context.Background(), socket, "secret", in, &screen) }()
	waitFor(t, func() bool { return strings.Contains(screen.String(), "Ctrl-] leaves") })
	hub.Write([]byte("login: "))
	waitFor(t, func() bool { return strings.Contains(screen.String(), "login: ") })
	keys.Write([]byte("root\n\x1dnot sent"))
	if err := <-done; err != nil {
		t.Errorf("leaving with Ctrl-]: %v", err)
	}
	waitFor(t, func() bool { return typed.String() == "root\n" })

	var other lockedBuffer
	err := Attach(context.Background(), socket, "secreT", in, &other)
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a wrong token: %v, want refused", err)
	}
	hub.Write([]byte("secret output"))
	if strings.Contains(other.String(), "secret output") {
		t.Errorf("a refused client read the console: %q", other.String())
	}
}

// serveConsole serves a console with the token "secret" on a socket of the test's, what is typed
// going to typed, and returns the socket and the console's hub.
func serveConsole(t *testing.T, typed func(string) error) (string, *Hub) {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "g.console")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	hub := NewHub()
	Serve(ln, "secret", hub, typed)
	return socket, hub
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// TestAttachLeavesNoKeyReader: once Attach returns (the guest went away, or ctx ended), nothing of
// it still reads the terminal: the next keystroke is the caller's.
func TestAttachLeavesNoKeyReader(t *testing.T) {
	socket, hub := serveConsole(t, func(string) error { return nil })
	in, keys, _ := os.Pipe()
	defer keys.Close()
	for _, end := range []string{"the guest goes away", "ctx ends"} {
		ctx, cancel := context.WithCancel(context.Background())
		var screen lockedBuffer
		done := make(chan error, 1)
		go func() { done <- Attach(ctx, socket, "secret", in, &screen) }()
		waitFor(t, func() bool { return strings.Contains(screen.String(), "Ctrl-] leaves") })
		if end == "ctx ends" {
			cancel()
		} else {
			hub.CloseAll()
		}
		if err := <-done; err != nil {
			t.Errorf("%s: %v", end, err)
		}
		cancel()
		keys.Write([]byte("k"))
		got := make(chan byte, 1)
		go func() {
			b := make([]byte, 1)
			in.Read(b)
			got <- b[0]
		}()
		select {
		case b := <-got:
			if b != 'k' {
				t.Errorf("%s: read %q, want k", end, b)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: the next keystroke was taken by a reader Attach left", end)
		}
	}
}
