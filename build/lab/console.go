package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/simple-uml/simple-uml/build/console"
	"github.com/simple-uml/simple-uml/build/files"
)

// Each guest's console is served (build/console) on a socket in the lab's private socket folder
// while the lab runs; `mage labConsole` attaches to it.

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
	if err := console.Attach(ctx, consoleSocket(sockets, guest), token, in, out); err != nil {
		return fmt.Errorf("lab %s, guest %s: %w (is the lab running? `go tool mage lab %s` starts it)", l.Name, guest, err, l.Name)
	}
	return nil
}

// serveConsole serves g's console on its socket until the listener is closed.
func (r *Running) serveConsole(g *guestRun) error {
	ln, err := net.Listen("unix", r.ConsoleSocket(g.spec.Name))
	if err != nil {
		return err
	}
	g.consoleListener = ln
	console.Serve(ln, r.token, g.hub, g.vm.Send)
	return nil
}
