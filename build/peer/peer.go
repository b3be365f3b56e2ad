// Package peer says which process is at the other end of a unix socket connection, for the servers a
// guest's kernel connects to (its network, a lab's LANs): a socket's path is no secret from a guest,
// and Landlock does not mediate connecting to one, so they check who connected. It reads what it
// needs of a process from /proc/<pid>/stat: its parent and its state.
package peer

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PID is the process that connected c: SO_PEERCRED, which the kernel records at connect, in this
// process's pid namespace; the peer cannot choose it.
func PID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, err
	}
	if credErr != nil {
		return 0, credErr
	}
	return int(cred.Pid), nil
}

// Parent is pid's parent process (from /proc/<pid>/stat), for a peer that is the child of a process
// we started (a kernel run by gdb).
func Parent(pid int) (int, error) {
	fields, err := stat(pid)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(fields[1])
}

// State is pid's state letter (from /proc/<pid>/stat): R, S, D, T (stopped), t (stopped by its
// tracer), Z (ended, not yet reaped)...
func State(pid int) (string, error) {
	fields, err := stat(pid)
	if err != nil {
		return "", err
	}
	return fields[0], nil
}

// Alive says whether pid is a process that has not ended: it exists and is no zombie.
func Alive(pid int) bool {
	state, err := State(pid)
	return err == nil && state != "Z"
}

// stat is /proc/<pid>/stat's fields after the command name, state first.
func stat(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses (a process names itself);
	// it ends at the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 2 {
		return nil, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	return fields, nil
}
