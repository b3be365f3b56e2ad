package lan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/containers/gvisor-tap-vsock/pkg/types"
)

// VXLANPort is VXLAN's UDP port (IANA): a lab's pods carry its LANs between them on it.
const VXLANPort = 4789

// vxlanHeader is VXLAN's header (RFC 7348): a flags byte with the I bit (a network identifier
// follows), then the 24-bit network identifier (VNI) in bytes 4 to 6.
const vxlanHeader = 8

// Bounds on the tunnel (SECURITY.md's limits).
const (
	// TunnelMACs is how many source addresses the peers of one LAN together may send from (the
	// switch's port of the tunnel), and how many the tunnel learns: a lab has 250 guests at most.
	TunnelMACs = 1024
	// resolveEvery is how often the peers' names are looked up again: a pod that comes back has a
	// new address, and frames from the old one are refused from then on. A LAN with a peer not
	// found yet (its pod still starting) is looked up every resolveMissing.
	resolveEvery   = 5 * time.Second
	resolveMissing = time.Second
)

// Peer is another host of the LAN: its names, tried in turn (the first that resolves wins), and the
// UDP port its tunnel listens on.
type Peer struct {
	Names []string
	Port  int
}

// Tunnel carries LANs between hosts (a lab's pods) as VXLAN over UDP, an encapsulation every
// network tool knows (tcpdump and Wireshark decode it). Each LAN has a network identifier and a
// list of peers; the tunnel is one port of the LAN's switch, so the switch never sends a peer's
// frame back into the tunnel. A frame from the switch goes to the peer its destination was last
// seen behind, or to every peer (a broadcast, or an address not learnt yet), as VXLAN's
// flood-and-learn does. A datagram is taken only from a peer's current address, with the
// identifier of a LAN that peer is on; anything else is dropped. VXLAN has no authentication: on
// a shared network, the cluster's network policy is what keeps strangers from sending as a peer.
type Tunnel struct {
	conn    *net.UDPConn
	resolve func(ctx context.Context, name string) ([]netip.Addr, error)
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu   sync.Mutex
	lans map[uint32]*tunnelLAN
}

// tunnelLAN is one LAN the tunnel carries.
type tunnelLAN struct {
	vni   uint32
	peers []Peer
	end   net.Conn // the tunnel's end of its switch port

	looking sync.Mutex // held by lookUp
	named   []int      // for each peer, which of its names resolved last (under looking)

	mu     sync.Mutex
	addrs  []netip.AddrPort           // each peer's current address; the zero value while not found
	looked time.Time                  // when they were all looked up
	behind map[[6]byte]netip.AddrPort // where a source address was last seen, TunnelMACs at most
}

// NewTunnel carries LANs over conn (bound to the host's tunnel port). resolve looks up a peer's name
// (nil: the system's resolver, IPv4).
func NewTunnel(conn *net.UDPConn, resolve func(ctx context.Context, name string) ([]netip.Addr, error)) *Tunnel {
	if resolve == nil {
		resolve = func(ctx context.Context, name string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip4", name)
		}
	}
	t := &Tunnel{conn: conn, resolve: resolve, lans: map[uint32]*tunnelLAN{}}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(2)
	go t.receive()
	go t.refresh()
	return t
}

// Join carries l to peers under network identifier vni (24 bits, not 0).
func (t *Tunnel) Join(l *LAN, vni uint32, peers []Peer) error {
	if vni == 0 || vni >= 1<<24 {
		return fmt.Errorf("LAN %s: VXLAN network identifier %d is not between 1 and %d", l.Name, vni, 1<<24-1)
	}
	ours, theirs, err := seqpacketPair()
	if err != nil {
		return fmt.Errorf("LAN %s: %w", l.Name, err)
	}
	tl := &tunnelLAN{vni: vni, peers: peers, end: ours, behind: map[[6]byte]netip.AddrPort{},
		named: make([]int, len(peers)), addrs: make([]netip.AddrPort, len(peers))}
	t.lookUp(tl, false)
	t.mu.Lock()
	_, taken := t.lans[vni]
	closed := t.ctx.Err() != nil
	if !taken && !closed {
		t.lans[vni] = tl
		t.wg.Add(1)
	}
	t.mu.Unlock()
	if taken || closed {
		ours.Close()
		theirs.Close()
		if closed {
			return fmt.Errorf("LAN %s: the tunnel is closed", l.Name)
		}
		return fmt.Errorf("LAN %s: VXLAN network identifier %d is another LAN's", l.Name, vni)
	}
	attached := l.attach(theirs, TunnelMACs, true)
	if !attached {
		ours.Close() // send sees it at once and ends
	}
	go t.send(tl)
	if !attached {
		return fmt.Errorf("LAN %s is closed", l.Name)
	}
	return nil
}

// Close stops the tunnel; the LANs' ports go when the LANs close.
func (t *Tunnel) Close() error {
	t.mu.Lock()
	t.cancel()
	for _, tl := range t.lans {
		tl.end.Close()
	}
	t.mu.Unlock()
	err := t.conn.Close()
	t.wg.Wait()
	return err
}

// send passes the frames the switch gives the tunnel's port to the peers. The switch never gives
// the port a frame that came in through it (Port's split horizon).
func (t *Tunnel) send(tl *tunnelLAN) {
	defer t.wg.Done()
	buf := make([]byte, vxlanHeader+MaxFrame+1)
	buf[0] = 0x08
	binary.BigEndian.PutUint32(buf[4:8], tl.vni<<8)
	for {
		n, err := tl.end.Read(buf[vxlanHeader:])
		if err != nil {
			return
		}
		if n < MinFrame || n > MaxFrame {
			continue
		}
		for _, to := range tl.destinations([6]byte(buf[vxlanHeader : vxlanHeader+6])) {
			t.conn.WriteToUDPAddrPort(buf[:vxlanHeader+n], to)
		}
	}
}

// destinations are where a frame to dst goes: the peer dst was last seen behind, or every peer
// found.
func (tl *tunnelLAN) destinations(dst [6]byte) []netip.AddrPort {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if dst[0]&1 == 0 { // unicast
		if at, ok := tl.behind[dst]; ok {
			return []netip.AddrPort{at}
		}
	}
	var all []netip.AddrPort
	for _, a := range tl.addrs {
		if a.IsValid() {
			all = append(all, a)
		}
	}
	return all
}

// receive takes the peers' datagrams and passes their frames to the LANs' switches. A switch that
// does not take a frame at once (a guest that stopped reading holds it up) loses it, rather than
// holding up the tunnel's other LANs.
func (t *Tunnel) receive() {
	defer t.wg.Done()
	buf := make([]byte, vxlanHeader+MaxFrame+1)
	for {
		n, from, err := t.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || t.ctx.Err() != nil {
				return
			}
			continue
		}
		vni, frame, ok := parseVXLAN(buf[:n])
		if !ok {
			continue
		}
		t.mu.Lock()
		tl := t.lans[vni]
		t.mu.Unlock()
		if tl != nil && tl.admit(from, [6]byte(frame[6:12])) {
			tl.end.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			tl.end.Write(frame)
		}
	}
}

// parseVXLAN splits a datagram into its network identifier and its frame: ok only for a VXLAN
// header with the I flag and a frame the LAN carries (MinFrame to MaxFrame bytes).
func parseVXLAN(datagram []byte) (vni uint32, frame []byte, ok bool) {
	if len(datagram) < vxlanHeader+MinFrame || len(datagram) > vxlanHeader+MaxFrame || datagram[0]&0x08 == 0 {
		return 0, nil, false
	}
	return binary.BigEndian.Uint32(datagram[4:8]) >> 8, datagram[vxlanHeader:], true
}

// admit says whether from is one of the LAN's peers, and learns that src is behind it.
func (tl *tunnelLAN) admit(from netip.AddrPort, src [6]byte) bool {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if !slices.Contains(tl.addrs, from) {
		return false
	}
	if _, known := tl.behind[src]; known || len(tl.behind) < TunnelMACs {
		tl.behind[src] = from
	}
	return true
}

// refresh looks the peers up again every resolveEvery, and those not found every resolveMissing.
func (t *Tunnel) refresh() {
	defer t.wg.Done()
	tick := time.NewTicker(resolveMissing)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		t.mu.Lock()
		lans := make([]*tunnelLAN, 0, len(t.lans))
		for _, tl := range t.lans {
			lans = append(lans, tl)
		}
		t.mu.Unlock()
		for _, tl := range lans {
			tl.mu.Lock()
			all := time.Since(tl.looked) >= resolveEvery
			tl.mu.Unlock()
			t.lookUp(tl, !all)
		}
	}
}

// lookUp resolves tl's peers (with missingOnly, those not found yet). A peer whose names are not
// found (its pod is not up) has no address until they are; one whose lookup fails otherwise (the
// resolver is down for a moment) keeps the address it had. What was learnt behind an address that
// changed is forgotten.
func (t *Tunnel) lookUp(tl *tunnelLAN, missingOnly bool) {
	tl.looking.Lock() // Join's first lookup and refresh's may meet
	defer tl.looking.Unlock()
	tl.mu.Lock()
	addrs := slices.Clone(tl.addrs)
	tl.mu.Unlock()
	for i, p := range tl.peers {
		if missingOnly && addrs[i].IsValid() {
			continue
		}
		addrs[i] = t.resolvePeer(tl, i, p, addrs[i])
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.addrs = addrs
	if !missingOnly {
		tl.looked = time.Now()
	}
	for mac, at := range tl.behind {
		if !slices.Contains(addrs, at) {
			delete(tl.behind, mac)
		}
	}
}

// resolvePeer is peer i's address: its names tried in turn, the one that resolved last first (a
// name that does not resolve may cost the lookup's whole timeout, from a resolver that asks one
// that cannot be reached). had is kept when no name is found for certain not to exist.
func (t *Tunnel) resolvePeer(tl *tunnelLAN, i int, p Peer, had netip.AddrPort) netip.AddrPort {
	gone := true
	for k := range p.Names {
		name := p.Names[(tl.named[i]+k)%len(p.Names)]
		ctx, cancel := context.WithTimeout(t.ctx, 2*time.Second)
		found, err := t.resolve(ctx, name)
		cancel()
		if err == nil && len(found) > 0 {
			tl.named[i] = (tl.named[i] + k) % len(p.Names)
			return netip.AddrPortFrom(found[0].Unmap(), uint16(p.Port))
		}
		var dnsErr *net.DNSError
		if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
			gone = false
		}
	}
	if gone {
		return netip.AddrPort{}
	}
	return had
}

// seqpacketPair is a connected pair of unix seqpacket sockets: one frame a packet, as a guest's
// connection to a switch is.
func seqpacketPair() (net.Conn, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	conn := func(fd int) (net.Conn, error) {
		f := os.NewFile(uintptr(fd), "tunnel")
		defer f.Close() // FileConn has its own descriptor
		return net.FileConn(f)
	}
	a, err := conn(fds[0])
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	b, err := conn(fds[1])
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// attach makes c a port of the switch, as accept does for an admitted guest, with room for
// maxMACs source addresses; evict: a new address pushes out the oldest rather than being refused
// (the tunnel's port, which stays for as long as the LAN). It says false when the LAN is closed.
func (l *LAN) attach(c net.Conn, maxMACs int, evict bool) bool {
	if !l.track(c) {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer l.untrack(c)
		p := NewPort(c, l.record)
		p.maxMACs, p.evict = maxMACs, evict
		l.sw.Accept(l.ctx, p, types.BessProtocol)
	}()
	return true
}
