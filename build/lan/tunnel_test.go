package lan

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// names is a resolver over a map that a test changes as pods come and go.
type names struct {
	mu   sync.Mutex
	m    map[string]netip.Addr
	down bool // the resolver answers nothing (a DNS server restarting)
}

func (n *names) set(name string, a netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.m[name] = a
}

func (n *names) resolve(_ context.Context, name string) ([]netip.Addr, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return nil, &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true}
	}
	if a, ok := n.m[name]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func (n *names) remove(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, name)
}

// site is one pod of a lab: a LAN switch, a guest on it, and the tunnel on a loopback port.
type site struct {
	lan    *LAN
	guest  *net.UnixConn
	tunnel *Tunnel
	port   int
}

func newSite(t *testing.T, n *names) *site {
	t.Helper()
	return newSiteCapturing(t, n, nil)
}

// newSiteCapturing is newSite with the LAN's capture written to capture.
func newSiteCapturing(t *testing.T, n *names, capture io.Writer) *site {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "lan.sock")
	l, err := Start("left", socket, capture, ours)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tun := NewTunnel(conn, n.resolve)
	t.Cleanup(func() { tun.Close() })
	return &site{lan: l, guest: guest(t, socket), tunnel: tun, port: conn.LocalAddr().(*net.UDPAddr).Port}
}

// vxlan is a datagram as a peer sends it.
func vxlan(vni uint32, f []byte) []byte {
	d := make([]byte, vxlanHeader, vxlanHeader+len(f))
	d[0] = 0x08
	binary.BigEndian.PutUint32(d[4:8], vni<<8)
	return append(d, f...)
}

// TestTunnel: two pods' LANs joined by the tunnel. Nothing comes from a peer whose name does not
// resolve yet (its pod starts); once it does, a broadcast crosses once and a unicast reply comes
// back; a datagram from a stranger,
// with another LAN's identifier, or that is no VXLAN frame, reaches nobody, and the tunnel goes on.
func TestTunnel(t *testing.T) {
	loop := netip.MustParseAddr("127.0.0.1")
	n := &names{m: map[string]netip.Addr{"trio-b": loop}} // trio-a does not resolve yet: its pod starts
	a, b := newSite(t, n), newSite(t, n)
	if err := a.tunnel.Join(a.lan, 1, []Peer{{Names: []string{"trio-b"}, Port: b.port}}); err != nil {
		t.Fatal(err)
	}
	if err := b.tunnel.Join(b.lan, 1, []Peer{{Names: []string{"trio-a", "trio-a-pod-0"}, Port: a.port}}); err != nil {
		t.Fatal(err)
	}
	macA, _ := net.ParseMAC("52:54:01:01:01:01")
	macB, _ := net.ParseMAC("52:54:01:02:01:01")
	broadcast, _ := net.ParseMAC("ff:ff:ff:ff:ff:ff")
	time.Sleep(100 * time.Millisecond) // the switches take the connections

	// b does not know a's address yet: it takes nothing from a.
	hello := frame(broadcast, macA, "who has B")
	a.guest.Write(hello)
	if got := receive(t, b.guest); got != nil {
		t.Errorf("B got %q from a peer not resolved yet", got)
	}
	// a's pod is up under the name podman gives it: b finds it within resolveMissing.
	n.set("trio-a-pod-0", loop)
	time.Sleep(resolveMissing + 500*time.Millisecond)
	a.guest.Write(hello)
	if got := receive(t, b.guest); !bytes.Equal(got, hello) {
		t.Fatalf("B got %q, want the broadcast", got)
	}
	if got := receive(t, b.guest); got != nil {
		t.Errorf("B got the broadcast twice: %q", got)
	}
	if got := receive(t, a.guest); got != nil {
		t.Errorf("the broadcast came back to A: %q", got)
	}
	reply := frame(macA, macB, "B is here")
	b.guest.Write(reply)
	if got := receive(t, a.guest); !bytes.Equal(got, reply) {
		t.Fatalf("A got %q, want B's reply", got)
	}

	// What must reach nobody.
	stranger, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: b.port})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	stranger.Write(vxlan(1, frame(broadcast, macA, "from a stranger")))
	peerA := a.tunnel.conn
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: b.port}
	for _, d := range [][]byte{
		vxlan(2, frame(broadcast, macA, "another LAN's")),
		vxlan(1, []byte("short")),
		append([]byte{0, 0, 0, 0, 0, 0, 1, 0}, frame(broadcast, macA, "no I flag")...),
		vxlan(1, make([]byte, MaxFrame+1)),
	} {
		peerA.WriteToUDP(d, to)
	}
	if got := receive(t, b.guest); got != nil {
		t.Errorf("B got %q", got)
	}
	a.guest.Write(hello)
	if got := receive(t, b.guest); !bytes.Equal(got, hello) {
		t.Fatalf("after the junk, B got %q, want the broadcast", got)
	}
}

// TestTunnelJoinRefuses: identifiers out of VXLAN's 24 bits, or taken by another LAN.
func TestTunnelJoinRefuses(t *testing.T) {
	s := newSite(t, &names{m: map[string]netip.Addr{}})
	for _, vni := range []uint32{0, 1 << 24} {
		if err := s.tunnel.Join(s.lan, vni, nil); err == nil {
			t.Errorf("VNI %d taken", vni)
		}
	}
	if err := s.tunnel.Join(s.lan, 7, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.tunnel.Join(s.lan, 7, nil); err == nil {
		t.Error("VNI 7 taken twice")
	}
}

func FuzzParseVXLAN(f *testing.F) {
	f.Add(vxlan(1, make([]byte, MinFrame)))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, d []byte) {
		vni, fr, ok := parseVXLAN(d)
		if ok && (vni >= 1<<24 || len(fr) < MinFrame || len(fr) > MaxFrame || !bytes.Equal(fr, d[vxlanHeader:])) {
			t.Errorf("accepted %x as VNI %d, frame %x", d, vni, fr)
		}
	})
}

// frameCounter counts what a LAN's capture is given: a record header and a frame for each frame.
type frameCounter struct{ writes atomic.Int64 }

func (c *frameCounter) Write(p []byte) (int, error) { c.writes.Add(1); return len(p), nil }

// TestTunnelMakesNoLoop: four pods on one LAN; b's pod goes (its name is no longer found), so the
// others forget what was behind it, while their switches still send b's address to the tunnel. One
// frame to b then must not go round between the pods without end (it did, at 240,000 frames a
// second, until the port kept the switch from sending a frame back where it came from).
func TestTunnelMakesNoLoop(t *testing.T) {
	loop := netip.MustParseAddr("127.0.0.1")
	n := &names{m: map[string]netip.Addr{"a": loop, "b": loop, "c": loop, "d": loop}}
	counters := map[string]*frameCounter{}
	sites := map[string]*site{}
	for _, name := range []string{"a", "b", "c", "d"} {
		counters[name] = &frameCounter{}
		sites[name] = newSiteCapturing(t, n, counters[name])
	}
	for name, s := range sites {
		var peers []Peer
		for other, o := range sites {
			if other != name {
				peers = append(peers, Peer{Names: []string{other}, Port: o.port})
			}
		}
		if err := s.tunnel.Join(s.lan, 1, peers); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, name := range []string{"a", "c", "d"} {
		go func(g *net.UnixConn) { // the guests read what comes
			buf := make([]byte, 2048)
			for {
				if _, err := g.Read(buf); err != nil {
					return
				}
			}
		}(sites[name].guest)
	}
	broadcast, _ := net.ParseMAC("ff:ff:ff:ff:ff:ff")
	macA, _ := net.ParseMAC("52:54:01:01:01:01")
	macB, _ := net.ParseMAC("52:54:01:02:01:01")
	sites["b"].guest.Write(frame(broadcast, macB, "B is here"))
	sites["a"].guest.Write(frame(broadcast, macA, "A is here"))
	time.Sleep(300 * time.Millisecond)
	n.remove("b")
	sites["b"].tunnel.Close()
	time.Sleep(resolveEvery + 1500*time.Millisecond) // the others look b up again and forget it
	total := func() int64 {
		return counters["a"].writes.Load() + counters["c"].writes.Load() + counters["d"].writes.Load()
	}
	before := total()
	sites["a"].guest.Write(frame(macB, macA, "one frame to B"))
	time.Sleep(time.Second)
	if got := total() - before; got > 20 {
		t.Errorf("one frame became %d capture writes in a second at a, c and d: a loop", got)
	}
}

// TestTunnelPeersAndLANs: a peer is admitted on the LANs it is a peer of, not on the tunnel's
// others; and a resolver that fails for a while (not a name found missing) loses no peer.
func TestTunnelPeersAndLANs(t *testing.T) {
	loop := netip.MustParseAddr("127.0.0.1")
	n := &names{m: map[string]netip.Addr{"trio-a": loop, "trio-b": loop}}
	a, b := newSite(t, n), newSite(t, n)
	// A second LAN at b, whose peer is not a.
	other := filepath.Join(t.TempDir(), "right.sock")
	right, err := Start("right", other, nil, ours)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { right.Close() })
	rightGuest := guest(t, other)
	if err := a.tunnel.Join(a.lan, 1, []Peer{{Names: []string{"trio-b"}, Port: b.port}}); err != nil {
		t.Fatal(err)
	}
	if err := b.tunnel.Join(b.lan, 1, []Peer{{Names: []string{"trio-a"}, Port: a.port}}); err != nil {
		t.Fatal(err)
	}
	if err := b.tunnel.Join(right, 2, []Peer{{Names: []string{"trio-c"}, Port: a.port}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	broadcast, _ := net.ParseMAC("ff:ff:ff:ff:ff:ff")
	macA, _ := net.ParseMAC("52:54:01:01:01:01")
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: b.port}
	a.tunnel.conn.WriteToUDP(vxlan(2, frame(broadcast, macA, "onto a LAN a is not on")), to)
	if got := receive(t, rightGuest); got != nil {
		t.Errorf("a put %q on b's other LAN", got)
	}
	n.mu.Lock()
	n.down = true
	n.mu.Unlock()
	time.Sleep(resolveEvery + 1500*time.Millisecond) // b looks a up again, and fails
	hello := frame(broadcast, macA, "still here")
	a.guest.Write(hello)
	if got := receive(t, b.guest); !bytes.Equal(got, hello) {
		t.Errorf("after the resolver failed, B got %q, want A's frame", got)
	}
}
