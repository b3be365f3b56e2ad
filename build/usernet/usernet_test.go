package usernet

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/attacktest"
)

// TestRoute: where a guest's connection may go, for each kind of address a guest's root can put in
// a packet, with the door to the host closed and open.
func TestRoute(t *testing.T) {
	own := attacktest.HostIPv4(t)
	cases := []struct {
		dst            string
		closed, opened string // the dial target; "" means refused
	}{
		{"10.0.2.2", "", "127.0.0.1:80"},
		{"127.0.0.1", "", ""},
		{"127.1.2.3", "", ""},
		{"0.0.0.0", "", ""}, // a dial to 0.0.0.0 reaches the host's loopback
		{"10.0.2.15", "", ""},
		{"10.0.2.255", "", ""},
		{"169.254.169.254", "", ""},
		{"224.0.0.1", "", ""},
		{"255.255.255.255", "", ""},
		{"93.184.216.34", "93.184.216.34:80", "93.184.216.34:80"},
		{"192.168.1.10", "192.168.1.10:80", "192.168.1.10:80"},
		{own, "", own + ":80"},
	}
	for _, c := range cases {
		for _, hostAccess := range []bool{false, true} {
			n := &Network{cfg: Config{HostAccess: hostAccess}}
			want := c.closed
			if hostAccess {
				want = c.opened
			}
			got, err := n.route(netip.MustParseAddr(c.dst), 80)
			if got != want || (want == "") != (err != nil) {
				t.Errorf("host access %v: route(%s:80) = %q, %v; want %q", hostAccess, c.dst, got, err, want)
			}
			if !hostAccess && (c.dst == "10.0.2.2" || c.dst == own) && !errors.Is(err, ErrHostClosed) {
				t.Errorf("route(%s) without host access: %v, want the door named", c.dst, err)
			}
		}
	}
}

func TestParseForwards(t *testing.T) {
	got, err := ParseForwards(" 2222:22, 8080:80 ,")
	if err != nil || len(got) != 2 || got[0] != (Forward{2222, 22}) || got[1] != (Forward{8080, 80}) {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []string{"22", "a:b", "0:22", "2222:70000", "2222-22", "-1:22"} {
		if _, err := ParseForwards(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestStartAndClose: the socket exists while the network runs and is gone after; a file already at
// the socket's path fails Start and is kept; a forward's host port that is taken fails Start with
// the port named; Close ends the kernel's connection.
func TestStartAndClose(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "net.sock")
	os.WriteFile(sock, []byte("someone else's"), 0o644)
	if _, err := Start(Config{Socket: sock}); err == nil {
		t.Fatal("Start over an existing file succeeded")
	}
	if data, err := os.ReadFile(sock); err != nil || string(data) != "someone else's" {
		t.Fatalf("the file at the socket's path: %q, %v", data, err)
	}
	os.Remove(sock)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	if _, err := Start(Config{Socket: sock, Forwards: []Forward{{port, 22}}}); err == nil || !strings.Contains(err.Error(), "choose another host port") {
		t.Fatalf("a taken host port: %v", err)
	}
	taken.Close()
	n, err := Start(Config{Socket: sock, Forwards: []Forward{{port, 22}}})
	if err != nil {
		t.Fatal(err)
	}
	n.Admit(func(pid int) bool { return pid == os.Getpid() }) // this test stands in for the guest's kernel
	kernel, err := net.Dial("unixpacket", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Close()
	client, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	n.Close()
	if _, err := net.Dial("unixpacket", sock); err == nil {
		t.Error("the socket still answers after Close")
	}
	// The gateway may have asked for the guest's hardware address (ARP) before it closed.
	kernel.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	for {
		if _, err := kernel.Read(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Error("the kernel's connection survived Close")
			}
			break
		}
	}
}

// TestAdmitsOnlyTheKernel: a connection from any process but the guest's kernel (another guest's
// kernel that found the socket) is let go at once, and gets none of the network.
func TestAdmitsOnlyTheKernel(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "net.sock")
	n, err := Start(Config{Socket: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Admit(func(pid int) bool { return pid == os.Getppid() }) // some other process
	other, err := net.Dial("unixpacket", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := other.Read(make([]byte, 2048)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a process that is not the kernel stayed on the network: %v", err)
	}
}

// TestRuntFrames: frames shorter than an Ethernet header from the guest's kernel (one of 3 bytes
// deadlocked gvisor-tap-vsock's switch for good, and Close with it) are dropped before the switch:
// an ARP request after them is answered, and the network closes at once.
func TestRuntFrames(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "net.sock")
	n, err := Start(Config{Socket: sock})
	if err != nil {
		t.Fatal(err)
	}
	n.Admit(func(pid int) bool { return pid == os.Getpid() })
	kernel, err := net.Dial("unixpacket", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Close()
	for _, size := range []int{1, 3, 6, 11, 13} {
		if _, err := kernel.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	guest, _ := net.ParseMAC(GuestMAC)
	request := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, guest...)
	request = append(request, 0x08, 0x06, // ARP
		0, 1, 8, 0, 6, 4, 0, 1) // Ethernet, IPv4, request
	request = append(request, guest...)
	request = append(request, netip.MustParseAddr(GuestIP).AsSlice()...)
	request = append(request, 0, 0, 0, 0, 0, 0)
	request = append(request, netip.MustParseAddr(GatewayIP).AsSlice()...)
	if _, err := kernel.Write(request); err != nil {
		t.Fatal(err)
	}
	kernel.SetReadDeadline(time.Now().Add(5 * time.Second))
	answered := false
	for buf := make([]byte, 2048); !answered; {
		m, err := kernel.Read(buf)
		if err != nil {
			break
		}
		answered = m >= 22 && buf[12] == 0x08 && buf[13] == 0x06 && buf[21] == 2 // an ARP reply
	}
	if !answered {
		t.Error("after the runts, the gateway does not answer ARP: the switch is stuck")
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the network did not close within 5 s after the runts")
	}
}
