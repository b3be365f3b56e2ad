package lan

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// ours admits this test's process, where the guests' kernels stand in.
func ours(pid int) bool { return pid == os.Getpid() }

// guest joins the LAN as a kernel's vector driver does: a unixpacket connection, one frame a packet.
func guest(t *testing.T, socket string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: socket, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func frame(dst, src net.HardwareAddr, payload string) []byte {
	f := append(append(append([]byte{}, dst...), src...), 0x08, 0x00)
	return append(f, []byte(payload)...)
}

// receive reads one frame, or nil when none comes within a short while.
func receive(t *testing.T, c *net.UnixConn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// TestLAN: a broadcast reaches every other guest, a unicast only its addressee once the switch has
// learnt where it is, the capture holds every frame sent, and Close ends every guest's connection
// and removes the socket.
func TestLAN(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "lan1.sock")
	var capture bytes.Buffer
	l, err := Start("lan1", socket, &capture, ours)
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := guest(t, socket), guest(t, socket), guest(t, socket)
	macA, _ := net.ParseMAC("52:54:01:00:01:01")
	macB, _ := net.ParseMAC("52:54:01:00:02:01")
	broadcast, _ := net.ParseMAC("ff:ff:ff:ff:ff:ff")
	time.Sleep(100 * time.Millisecond) // the switch takes the connections
	hello := frame(broadcast, macA, "who has B")
	a.Write(hello)
	if got := receive(t, b); !bytes.Equal(got, hello) {
		t.Fatalf("B got %q, want the broadcast", got)
	}
	if got := receive(t, c); !bytes.Equal(got, hello) {
		t.Fatalf("C got %q, want the broadcast", got)
	}
	if got := receive(t, a); got != nil {
		t.Errorf("the sender got its own broadcast back: %q", got)
	}
	reply := frame(macA, macB, "B is here")
	b.Write(reply)
	if got := receive(t, a); !bytes.Equal(got, reply) {
		t.Fatalf("A got %q, want B's reply", got)
	}
	if got := receive(t, c); got != nil {
		t.Errorf("C got a frame for A: %q", got)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, a); got != nil {
		t.Errorf("a frame after Close: %q", got)
	}
	if _, err := a.Write(hello); err == nil {
		if _, err := a.Write(hello); err == nil {
			t.Error("a guest's connection outlived Close")
		}
	}
	if _, err := os.Stat(socket); !os.IsNotExist(err) {
		t.Errorf("the socket is left: %v", err)
	}

	r, err := pcapgo.NewReader(&capture)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Errorf("capture link type %v", r.LinkType())
	}
	var frames [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		frames = append(frames, data)
	}
	if len(frames) != 2 || !bytes.Equal(frames[0], hello) || !bytes.Equal(frames[1], reply) {
		t.Errorf("capture holds %q, want the broadcast and the reply", frames)
	}
}

func TestStartRefusesALongSocketPath(t *testing.T) {
	socket := filepath.Join(t.TempDir(), strings.Repeat("d", 110), "lan.sock")
	if _, err := Start("lan1", socket, nil, ours); err == nil || !strings.Contains(err.Error(), "shorter folder") {
		t.Errorf("err = %v", err)
	}
}

func TestStartRefusesATakenSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "lan.sock")
	os.WriteFile(socket, nil, 0o600)
	if _, err := Start("lan1", socket, nil, ours); err == nil {
		t.Error("a LAN took over a path that exists")
	}
}

// TestLANFloods: frames too short to be Ethernet (one of 11 bytes once deadlocked the switch for
// good) are dropped and the LAN goes on; a guest sending from endless source addresses makes the
// switch learn MaxMACs of them, no more; Close ends in bounded time after both.
func TestLANFloods(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "lan1.sock")
	l, err := Start("lan1", socket, nil, ours)
	if err != nil {
		t.Fatal(err)
	}
	a, b := guest(t, socket), guest(t, socket)
	time.Sleep(100 * time.Millisecond)
	for n := 1; n < MinFrame; n++ {
		a.Write(make([]byte, n))
	}
	broadcast, _ := net.ParseMAC("ff:ff:ff:ff:ff:ff")
	macA, _ := net.ParseMAC("52:54:01:00:01:01")
	hello := frame(broadcast, macA, "still here")
	a.Write(hello)
	if got := receive(t, b); !bytes.Equal(got, hello) {
		t.Fatalf("after short frames B got %q, want the broadcast", got)
	}
	for i := range 5000 {
		src := net.HardwareAddr{0x52, 0x54, 0x02, byte(i >> 16), byte(i >> 8), byte(i)}
		a.Write(frame(broadcast, src, "flood"))
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(l.sw.CAM()); n > MaxMACs {
		t.Errorf("the switch learnt %d addresses from one port, bound %d", n, MaxMACs)
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung after the floods")
	}
}

// TestLANAdmits: a process the LAN does not admit (another guest's kernel) is let go at once; the
// admitted keep their frames to themselves.
func TestLANAdmits(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "lan1.sock")
	asked := make(chan int, 10)
	l, err := Start("lan1", socket, nil, func(pid int) bool { asked <- pid; return false })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := guest(t, socket)
	if pid := <-asked; pid != os.Getpid() {
		t.Errorf("admit was asked about pid %d, the connecting process is %d", pid, os.Getpid())
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatal("a process not admitted read from the LAN")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("a process not admitted was kept connected")
	}
}

// TestPortMACBound: a guest's port refuses source addresses past its bound (it goes when the guest
// does); a tunnel's port, which stays, pushes out its oldest instead, so nobody can shut new
// addresses out of it for good. Neither gives the switch's frames back to where they came from.
func TestPortMACBound(t *testing.T) {
	for _, evict := range []bool{false, true} {
		ours, theirs := net.Pipe()
		defer ours.Close()
		defer theirs.Close()
		p := NewPort(ours, nil)
		p.maxMACs, p.evict = 2, evict
		var allowed []bool
		for i := byte(1); i <= 3; i++ {
			allowed = append(allowed, p.allowed(frame(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, net.HardwareAddr{2, 0, 0, 0, 0, i}, "x")))
		}
		if want := []bool{true, true, evict}; !slices.Equal(allowed, want) {
			t.Errorf("evict %v: allowed %v, want %v", evict, allowed, want)
		}
		if evict && (p.macs[[6]byte{2, 0, 0, 0, 0, 1}] || len(p.macs) != 2) {
			t.Errorf("evict: the oldest is still there: %v", p.macs)
		}
		// A frame from behind the port is not written back to it; another is.
		got := make(chan []byte, 2)
		go func() {
			buf := make([]byte, 64)
			for {
				n, err := theirs.Read(buf)
				if err != nil {
					return
				}
				got <- slices.Clone(buf[:n])
			}
		}()
		p.Write(frame(net.HardwareAddr{2, 0, 0, 0, 0, 9}, net.HardwareAddr{2, 0, 0, 0, 0, 2}, "back"))
		p.Write(frame(net.HardwareAddr{2, 0, 0, 0, 0, 2}, net.HardwareAddr{2, 0, 0, 0, 0, 9}, "forth"))
		if f := <-got; !bytes.HasSuffix(f, []byte("forth")) {
			t.Errorf("evict %v: the port got %q first, want only the frame from elsewhere", evict, f)
		}
	}
}
