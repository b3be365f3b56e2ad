package uml

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeNetKernel makes the test binary stand in for a kernel that joins its user network: it dials
// the socket its vec0 argument names and says whether the network kept it (see TestMain).
const fakeNetKernel = "SUML_UML_FAKE_NET_KERNEL"

func TestMain(m *testing.M) {
	if os.Getenv(fakeNetKernel) == "1" {
		os.Exit(joinUserNet(os.Args[1:]))
	}
	if os.Getenv(hostileKernel) == "1" {
		os.Exit(tryHostCalls())
	}
	if n := os.Getenv(syscallLoop); n != "" {
		os.Exit(loopSystemCalls(n))
	}
	if cow := os.Getenv(holdCOW); cow != "" {
		os.Exit(lockCOW(cow))
	}
	if os.Getenv(traceStarter) == "1" {
		os.Exit(traceThreads())
	}
	if os.Getenv(fromMainThread) == "1" {
		os.Exit(confineFromMainThread())
	}
	os.Exit(m.Run())
}

// joinUserNet dials the user network named on the command line, as UML's vector driver does, and
// prints "kept" when the connection stays up for a second, "dropped" when the network closes it.
func joinUserNet(args []string) int {
	for _, a := range args {
		_, spec, ok := strings.Cut(a, "vec0:transport=bess,dst=")
		if !ok {
			continue
		}
		sock, _, _ := strings.Cut(spec, ",")
		c, err := net.Dial("unixpacket", sock)
		if err != nil {
			fmt.Println("dial:", err)
			return 1
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			if _, err := c.Read(make([]byte, 65536)); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					fmt.Println("kept")
				} else {
					fmt.Println("dropped")
				}
				return 0
			}
		}
	}
	fmt.Println("no vec0")
	return 1
}

// TestUserNetAdmitsItsKernel: the user network keeps the connection of the kernel it was started for,
// in every way a kernel is started (a guest, a person's boot, gdb's child), and of no one else.
func TestUserNetAdmitsItsKernel(t *testing.T) {
	t.Setenv(fakeNetKernel, "1")
	o := Options{Kernel: os.Args[0], Sandbox: fakeKernel, Net: &Net{Transport: UserNet}}
	res, err := RunUntilExit(context.Background(), o)
	if err != nil || !strings.Contains(res.Console, "kept") {
		t.Errorf("a guest's kernel: %q %v", res.Console, err)
	}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	var out bytes.Buffer
	if err := Interactive(context.Background(), o, stdin, &out); err != nil || !strings.Contains(out.String(), "kept") {
		t.Errorf("a person's boot: %q %v", out.String(), err)
	}
	// gdb's child: a shell stands in for gdb, the test binary for the kernel it starts.
	out.Reset()
	shell := script(t, `shift; "$@"`) // gdb's arguments, then --args kernel ...: run as a child, as gdb does
	rt, err := prepare(o)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.release()
	argv := append([]string{shell, "--args", os.Args[0]}, rt.args...)
	if err := foreground(context.Background(), argv, o, rt, true, stdin, &out); err != nil || !strings.Contains(out.String(), "kept") {
		t.Errorf("gdb's child: %q %v", out.String(), err)
	}
}
