// Package lan is a lab's local network: an Ethernet switch in this process that UML guests join over
// unixpacket sockets (the vector driver's BESS transport), as usernet's guest joins its gateway. It
// is containers/gvisor-tap-vsock's switch, the one usernet uses, with no gateway on it: frames go
// between the guests and nowhere else, so a LAN reaches neither the host nor any other network. A
// capture records every frame a guest puts on the LAN, as a pcap file.
package lan

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/containers/gvisor-tap-vsock/pkg/tap"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/simple-uml/simple-uml/build/peer"
	"github.com/sirupsen/logrus"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// MaxFrame is the largest frame a LAN carries and a capture records: a 1500-byte MTU and its
// Ethernet header, with room for a VLAN tag.
const MaxFrame = 1522

// maxSocketPath is what fits in a unix socket address (sun_path, with its terminating NUL).
const maxSocketPath = 107

var quiet sync.Once

// LAN is a running switch. Close stops it.
type LAN struct {
	Name   string
	Socket string // where guests connect

	ln     *net.UnixListener
	sw     *tap.Switch
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]bool
	closed   bool
	capture  *pcapgo.Writer
	captured int // bytes written to it
	admit    Admit
}

// Admit says whether the process pid may join the LAN: the lab admits the kernel of each guest with
// an interface on it and nobody else. A unix socket's path is no secret from a guest (it is on the
// kernel's command line) and Landlock does not mediate connecting to one, so a guest's kernel that
// went hostile could otherwise join every LAN of the lab.
type Admit func(pid int) bool

// Start listens on socket (which must not exist) and switches frames between the guests that join,
// each admitted by admit. When capture is not nil, every frame a guest sends is written to it as a
// pcap record.
func Start(name, socket string, capture io.Writer, admit Admit) (*LAN, error) {
	// The switch logs for gvproxy's own log; what matters to a user is said by the caller.
	quiet.Do(func() { logrus.SetOutput(io.Discard) })
	l := &LAN{Name: name, Socket: socket, sw: tap.NewSwitch(false), conns: map[net.Conn]bool{}, admit: admit}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	// The switch hands frames for its gateway, and broadcasts, to this device; a LAN has none.
	l.sw.Connect(nobody{})
	if capture != nil {
		w := pcapgo.NewWriter(capture)
		if err := w.WriteFileHeader(MaxFrame, layers.LinkTypeEthernet); err != nil {
			return nil, fmt.Errorf("LAN %s capture: %w", name, err)
		}
		l.capture = w
	}
	if len(socket) > maxSocketPath {
		return nil, fmt.Errorf("LAN %s: socket %s is longer than a unix socket address allows (%d bytes): use a shorter folder (TMPDIR)", name, socket, maxSocketPath)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: socket, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("LAN %s: %w", name, err)
	}
	l.ln = ln
	l.wg.Add(1)
	go l.accept()
	return l, nil
}

func (l *LAN) accept() {
	defer l.wg.Done()
	for {
		c, err := l.ln.AcceptUnix()
		if err != nil {
			return
		}
		if pid, err := peer.PID(c); err != nil || !l.admit(pid) {
			c.Close()
			continue
		}
		if !l.attach(c, MaxMACs, false) {
			return
		}
	}
}

func (l *LAN) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return false
	}
	l.conns[c] = true
	return true
}

func (l *LAN) untrack(c net.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
	c.Close()
}

// record writes one frame to the capture.
func (l *LAN) record(frame []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.capture == nil || l.closed || l.captured >= MaxCapture {
		return
	}
	n := min(len(frame), MaxFrame)
	l.captured += n + 16 // the record's header
	l.capture.WritePacket(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: n, Length: len(frame)}, frame[:n])
}

// Close stops the switch and ends every guest's connection; the socket file goes with the listener.
func (l *LAN) Close() error {
	l.cancel()
	l.mu.Lock()
	l.closed = true
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	var err error
	if l.ln != nil {
		err = l.ln.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	l.wg.Wait()
	return err
}

// Bounds on what a guest can make the switch hold (SECURITY.md's limits).
const (
	// MinFrame is an Ethernet header: anything shorter is no frame, and gvisor-tap-vsock's switch
	// (v0.8.9) deadlocks on a frame of 11 bytes or less, for good.
	MinFrame = 14
	// MaxMACs is how many source addresses one port may send from: the switch learns each and
	// forgets them only when the port goes, so a guest sending from random addresses would grow its
	// table without end. A guest that bridges more machines than this loses the frames of the rest.
	MaxMACs = 64
	// MaxCapture is how much of a LAN's traffic its capture keeps: the first MaxCapture bytes of
	// frames, then no more (the lab says where the capture is; its size says it stopped).
	MaxCapture = 256 << 20
)

// Port is a guest's connection (or a tunnel's) as a gvisor-tap-vsock switch reads it: each read is
// one frame (the socket keeps frames apart), which record (if any) sees on its way in. Frames the
// switch must not see are dropped here, and so are frames the switch would send back out of the
// port they came in through (split horizon: the switch sends a unicast back to its port when it
// learnt the destination there, which between two tunnels makes a loop). A LAN's switch and the
// user network's (build/usernet) are the same.
type Port struct {
	net.Conn
	record  func(frame []byte)
	mu      sync.Mutex
	macs    map[[6]byte]bool // source addresses this port has sent from
	order   [][6]byte        // the same, oldest first (evict)
	maxMACs int              // how many it may
	evict   bool             // a new one beyond maxMACs pushes out the oldest instead of being refused
}

// NewPort is c as a switch's port; record, if not nil, is given each frame the switch gets.
func NewPort(c net.Conn, record func(frame []byte)) *Port {
	return &Port{Conn: c, record: record, macs: map[[6]byte]bool{}, maxMACs: MaxMACs}
}

func (p *Port) Read(b []byte) (int, error) {
	for {
		n, err := p.Conn.Read(b)
		if err != nil || p.allowed(b[:n]) {
			if n > 0 && p.record != nil {
				p.record(b[:n])
			}
			return n, err
		}
	}
}

// Write passes a frame from the switch to the port's far end, unless its source is behind the port.
func (p *Port) Write(frame []byte) (int, error) {
	if len(frame) >= MinFrame {
		p.mu.Lock()
		back := p.macs[[6]byte(frame[6:12])]
		p.mu.Unlock()
		if back {
			return len(frame), nil
		}
	}
	return p.Conn.Write(frame)
}

// allowed says whether the switch may have frame: long enough, and from one of the port's first
// maxMACs source addresses (or, with evict, its latest).
func (p *Port) allowed(frame []byte) bool {
	if len(frame) < MinFrame {
		return false
	}
	src := [6]byte(frame[6:12])
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.macs[src] {
		return true
	}
	if len(p.macs) >= p.maxMACs {
		if !p.evict {
			return false
		}
		delete(p.macs, p.order[0])
		p.order = p.order[1:]
	}
	p.macs[src] = true
	p.order = append(p.order, src)
	return true
}

// nobody is the switch's gateway on a LAN: an address no guest uses, taking whatever is sent to it
// (broadcasts among them) and passing it nowhere.
type nobody struct{}

func (nobody) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}
func (nobody) LinkAddress() tcpip.LinkAddress                                        { return nobodyMAC }
func (nobody) IP() string                                                            { return "" }

// nobodyMAC is locally administered and unicast, so no guest's frames are for it unless addressed
// to it by hand.
var nobodyMAC = tcpip.LinkAddress("\x02\x00\x00\x00\x00\x00")
