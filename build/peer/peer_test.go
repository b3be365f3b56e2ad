package peer

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestPID: the pid of whoever connected, this process or another one.
func TestPID(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	if pid, err := PID(s); err != nil || pid != os.Getpid() {
		t.Errorf("PID = %d, %v; want this process, %d", pid, err, os.Getpid())
	}
	s.Close()
	// Another process: this test binary again, as TestMain's child.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SUML_PEER_SOCKET="+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s, err = ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pid, err := PID(s)
	if err != nil || pid != cmd.Process.Pid {
		t.Errorf("PID = %d, %v; want the child, %d", pid, err, cmd.Process.Pid)
	}
	if parent, err := Parent(pid); err != nil || parent != os.Getpid() {
		t.Errorf("Parent(%d) = %d, %v; want this process, %d", pid, parent, err, os.Getpid())
	}
	s.Write([]byte{0})
	cmd.Wait()
}

// TestMain's child side connects to the socket TestPID names, and waits for a byte.
func TestMain(m *testing.M) {
	if sock := os.Getenv("SUML_PEER_SOCKET"); sock != "" {
		c, err := net.Dial("unix", sock)
		if err != nil {
			os.Exit(1)
		}
		c.Read(make([]byte, 1))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestState: a process's state, read past its command name whatever that holds (a process names
// itself: here "x) Z y", which a first-')' reading takes for a zombie); a killed process not yet
// reaped is no longer alive, nor one reaped.
func TestState(t *testing.T) {
	sleep := filepath.Join(t.TempDir(), "x) Z y")
	data, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(sleep, data, 0o755)
	cmd := exec.Command(sleep, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if state, err := State(pid); err == nil && state == "S" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("state %q %v, want S", state, err)
		}
	}
	if !Alive(pid) {
		t.Error("a sleeping process is not alive")
	}
	cmd.Process.Kill()
	for deadline := time.Now().Add(5 * time.Second); Alive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a killed process, not reaped, is still alive")
		}
	}
	if state, _ := State(pid); state != "Z" {
		t.Errorf("a killed process not reaped: state %q, want Z", state)
	}
	cmd.Wait()
	if Alive(pid) {
		t.Error("a reaped process is alive")
	}
}
