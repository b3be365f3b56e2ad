package uml

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// UML's management console (CONFIG_MCONSOLE): the kernel serves requests on a unix datagram socket,
// <uml_dir>/<umid>/mconsole, and answers to the address a request came from. Requests and replies
// are fixed-size records in the host's byte order (arch/um/include/shared/mconsole.h).
const (
	mconsoleMagic    = 0xcafebabe
	mconsoleVersion  = 2
	mconsoleMaxData  = 512
	mconsoleMaxReply = 64 << 10 // the two requests sent are answered in a record each
)

var mconsoleSeq atomic.Int64

// mconsoleClients is the folder of a boot's run folder where simple-uml binds the sockets the
// kernel answers its management console requests to: made by prepare, and the one place beside
// its own sockets the kernel's sandbox lets it send to (Landlock ABI 9 mediates that).
const mconsoleClients = "mconsole-clients"

// mconsole sends command to the kernel's management console and returns its answer, within
// timeout.
func (rt *runtime) mconsole(command string, timeout time.Duration) (string, error) {
	if len(command) >= mconsoleMaxData {
		return "", fmt.Errorf("mconsole command %q is too long", command)
	}
	umid := rt.umid
	if umid == "" {
		return "", errors.New("the kernel has no umid: no management console")
	}
	// The kernel owns its run folder and may put links in it: its socket and the clients' folder
	// are opened through an os.Root of the folder (no way out of it), and its socket is sent to by
	// descriptor.
	root, err := os.OpenRoot(rt.dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	server, err := root.OpenFile(filepath.Join(umid, "mconsole"), unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", fmt.Errorf("the kernel's management console: %w", err)
	}
	defer server.Close()
	if fi, err := server.Stat(); err != nil || fi.Mode().Type() != fs.ModeSocket {
		return "", fmt.Errorf("%s/%s/mconsole is not the kernel's management console socket (%v)", rt.dir, umid, err)
	}
	clients, err := root.OpenFile(mconsoleClients, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer clients.Close()
	// The kernel answers to the address the client binds, a path it resolves itself: not a
	// descriptor's (its /proc/self is its own). The folder was checked above; a kernel that swaps
	// it for a link meanwhile makes the client's socket land where the link leads, and gets no
	// answer there (its sandbox lets it send only to the folder prepare made).
	name := fmt.Sprintf("mc-%d.sock", mconsoleSeq.Add(1))
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(rt.dir, mconsoleClients, name), Net: "unixgram"})
	if err != nil {
		return "", err
	}
	defer root.Remove(filepath.Join(mconsoleClients, name))
	defer c.Close()
	request := make([]byte, 12+mconsoleMaxData)
	binary.NativeEndian.PutUint32(request[0:], mconsoleMagic)
	binary.NativeEndian.PutUint32(request[4:], mconsoleVersion)
	binary.NativeEndian.PutUint32(request[8:], uint32(len(command)))
	copy(request[12:], command)
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.WriteToUnix(request, &net.UnixAddr{Name: procFD(server), Net: "unixgram"}); err != nil {
		return "", fmt.Errorf("mconsole %s: %w", command, err)
	}
	answer, err := readMconsoleReply(c)
	if err != nil {
		return answer, fmt.Errorf("mconsole %s: %w", command, err)
	}
	return answer, nil
}

// procFD is the path that names f's file itself, whatever is at its path now.
func procFD(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// readMconsoleReply reads the kernel's reply to a request, which comes in records while their
// "more" is set: what they say, or an error with it when the kernel refused the request.
func readMconsoleReply(c *net.UnixConn) (string, error) {
	var answer strings.Builder
	for {
		reply := make([]byte, 12+mconsoleMaxData)
		n, err := c.Read(reply)
		if err != nil {
			return answer.String(), err
		}
		if n < 12 {
			return answer.String(), fmt.Errorf("a reply of %d bytes", n)
		}
		failed, more, size := binary.NativeEndian.Uint32(reply[0:]), binary.NativeEndian.Uint32(reply[4:]), int(binary.NativeEndian.Uint32(reply[8:]))
		answer.Write(reply[12 : 12+min(size, n-12, mconsoleMaxData)])
		if failed != 0 {
			return answer.String(), errors.New(answer.String())
		}
		if more == 0 {
			return answer.String(), nil
		}
		if answer.Len() > mconsoleMaxReply { // a kernel may send records without end
			return "", fmt.Errorf("a reply longer than %d bytes", mconsoleMaxReply)
		}
	}
}

// SettleTimeout is how long a stop that keeps the guest's disk waits for Settle: a guest's sync of
// a few hundred MiB of dirty pages takes a second or two.
const SettleTimeout = 5 * time.Second

// settledText is what the kernel prints once an emergency remount has written everything out.
const settledText = "Emergency Remount complete"

// settleCommands are sent in turn: console log level 7, a kernel's default (a guest booted with
// quiet, or that lowered its level, would not print settledText), an emergency sync, and every
// file system remounted read-only. The management console's sysrq is held to the guest's
// kernel.sysrq setting: a guest whose root turned those keys off (or, quiet, the log level's key
// alone, as kernel.sysrq=176 does) is stopped unsettled, after the timeout.
var settleCommands = []string{"sysrq 7", "sysrq s", "sysrq u"}

// Settle has the guest write what it holds in memory to its disks (an emergency sync, then every
// file system remounted read-only, through the management console), and waits up to timeout for
// the kernel to say it has, so that a Stop after it loses nothing the guest wrote. It needs nothing
// of the guest's own system (no login, no init of a kind); the guest is of no use after it but to
// be stopped. A guest that silences its kernel or lies costs its own stop the rest of timeout.
func (g *Guest) Settle(timeout time.Duration) error {
	g.mu.Lock()
	rt := g.rt
	g.mu.Unlock()
	if rt == nil {
		return errors.New("the guest has ended")
	}
	deadline := time.Now().Add(timeout) // for all of it
	g.skipConsole()                     // the kernel's word counts from here on
	for _, cmd := range settleCommands {
		if _, err := rt.mconsole(cmd, time.Until(deadline)); err != nil {
			return err
		}
	}
	if _, err := g.Expect(context.Background(), settledText, time.Until(deadline)); err != nil {
		var failed *Error // not a failed boot: no console in the message
		if errors.As(err, &failed) {
			return fmt.Errorf("the disks are not known to be settled: %s", failed.Reason)
		}
		return err
	}
	return nil
}
