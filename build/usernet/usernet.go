// Package usernet gives a UML guest a network without privileges and without a door to the host
// unless one is opened: a user-mode TCP/IP stack (gVisor's netstack, assembled from
// containers/gvisor-tap-vsock) runs in this process and meets the kernel's vector driver on a
// unixpacket socket (UML's BESS transport). The stack serves DHCP and DNS on the gateway address;
// every TCP connection or UDP flow the guest starts leaves as one this process makes, after route
// has decided where it may go: never to the host itself (its loopback, its own addresses) unless
// HostAccess is set, and then only as the gateway address.
package usernet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containers/gvisor-tap-vsock/pkg/services/dhcp"
	"github.com/containers/gvisor-tap-vsock/pkg/services/dns"
	"github.com/containers/gvisor-tap-vsock/pkg/services/forwarder"
	"github.com/containers/gvisor-tap-vsock/pkg/tap"
	"github.com/containers/gvisor-tap-vsock/pkg/types"
	"github.com/inetaf/tcpproxy"
	"github.com/simple-uml/simple-uml/build/lan"
	"github.com/simple-uml/simple-uml/build/peer"
	"github.com/sirupsen/logrus"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The network as the guest sees it. The addresses are slirp's, which guests and people know.
const (
	Subnet    = "10.0.2.0/24"
	GuestIP   = "10.0.2.15"
	GatewayIP = "10.0.2.2" // the stack itself: DHCP, DNS, and the host's loopback when HostAccess is set
	GuestMAC  = "52:54:00:12:34:56"
	Interface = "vec0" // the guest's name for its network device
	// MTU is the link's: large, because each frame costs the guest kernel a host system call or two
	// and so the frame rate, not the bytes, limits throughput (see docs/benchmarks.md).
	MTU = 65520

	gatewayMAC = "52:54:00:12:34:02"
	// maxPendingConnections bounds the guest's half-open connections the stack works on at once.
	maxPendingConnections = 64
	dialTimeout           = 10 * time.Second
)

// Forward maps host 127.0.0.1:Host to the guest's TCP port Guest.
type Forward struct{ Host, Guest int }

// ParseForwards reads "2222:22,8080:80".
func ParseForwards(s string) ([]Forward, error) {
	var out []Forward
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		h, g, ok := strings.Cut(f, ":")
		hp, err1 := strconv.Atoi(h)
		gp, err2 := strconv.Atoi(g)
		if !ok || err1 != nil || err2 != nil || hp <= 0 || hp > 65535 || gp <= 0 || gp > 65535 {
			return nil, fmt.Errorf("port forward %q: want HOSTPORT:GUESTPORT, e.g. 2222:22", f)
		}
		out = append(out, Forward{Host: hp, Guest: gp})
	}
	return out, nil
}

// Config is one guest's network.
type Config struct {
	// Socket is the path of the unixpacket socket the kernel connects to (its vec0 BESS transport);
	// it must not exist yet.
	Socket string
	// HostAccess opens the door to the host: the guest's connections to GatewayIP reach the host's
	// 127.0.0.1, and connections to the host's own addresses are let through.
	HostAccess bool
	// Forwards expose guest TCP ports on the host's 127.0.0.1, or on ForwardAddress.
	Forwards []Forward
	// ForwardAddress, when set, is where the forwards listen instead: a container's every address
	// ("0.0.0.0"), its network namespace its own, so that its engine's published ports and a
	// Kubernetes Service reach them.
	ForwardAddress string

	resolver *net.Resolver // where the guest's DNS questions go; nil: the host's resolver (tests set one)
}

// Network is a running user-mode network. Close stops it.
type Network struct {
	cfg    Config
	ln     *net.UnixListener
	stack  *stack.Stack
	sw     *tap.Switch
	ports  []net.Listener // the forwards' listeners on the host
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	open   map[net.Conn]bool // host-side connections Close must end
	closed bool
	flows  atomic.Int32                       // UDP flows relayed now
	conns  atomic.Int32                       // TCP connections relayed or being dialled now
	admit  atomic.Pointer[func(pid int) bool] // who may join (Admit)
}

// A guest opens as many connections and UDP flows as it likes, each a socket (a descriptor) of this
// process, which may carry every guest of a lab: beyond these, new ones are refused (TCP reset, UDP
// dropped) until some end.
const (
	MaxTCP = 512
	MaxUDP = 256
)

var (
	subnet  = netip.MustParsePrefix(Subnet)
	gateway = netip.MustParseAddr(GatewayIP)
	quiet   sync.Once
)

// ErrHostClosed is the reason a guest's connection to the host is refused.
var ErrHostClosed = errors.New("the guest may not reach the host: its access is closed (boot.host_access)")

// Start listens on cfg.Socket and serves the guest's network until Close.
func Start(cfg Config) (*Network, error) {
	// The library logs for gvproxy's own log; what matters to a user here is said by the caller.
	quiet.Do(func() { logrus.SetOutput(io.Discard) })
	n := &Network{cfg: cfg, open: map[net.Conn]bool{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.buildStack(); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.serveServices(); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.exposeForwards(); err != nil {
		n.Close()
		return nil, err
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: cfg.Socket, Net: "unixpacket"})
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("guest network socket: %w", err)
	}
	n.ln = ln
	n.wg.Add(1)
	go n.acceptKernel()
	return n, nil
}

// buildStack makes the gateway: a switch the guest's frames arrive on, joined to a netstack NIC that
// answers for the gateway's address and, being promiscuous, for every address the guest sends to.
func (n *Network) buildStack() error {
	link, err := tap.NewLinkEndpoint(false, MTU, gatewayMAC, GatewayIP, nil)
	if err != nil {
		return err
	}
	n.sw = tap.NewSwitch(false)
	link.Connect(n.sw)
	n.sw.Connect(link)
	n.stack = stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	if err := n.stack.CreateNIC(1, link); err != nil {
		return errors.New(err.String())
	}
	if err := n.stack.AddProtocolAddress(1, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddrFrom4(gateway.As4()).WithPrefix(),
	}, stack.AddressProperties{}); err != nil {
		return errors.New(err.String())
	}
	n.stack.SetSpoofing(1, true)
	n.stack.SetPromiscuousMode(1, true)
	sub, err := tcpip.NewSubnet(tcpip.AddrFrom4(subnet.Addr().As4()), tcpip.MaskFromBytes(net.CIDRMask(subnet.Bits(), 32)))
	if err != nil {
		return err
	}
	n.stack.SetRouteTable([]tcpip.Route{{Destination: sub, NIC: 1}})
	n.stack.SetTransportProtocolHandler(tcp.ProtocolNumber, tcp.NewForwarder(n.stack, 0, maxPendingConnections, n.forwardTCP).HandlePacket)
	n.stack.SetTransportProtocolHandler(udp.ProtocolNumber, udp.NewForwarder(n.stack, n.forwardUDP).HandlePacket)
	return nil
}

// serveServices starts DNS (answered from the host's resolver) and DHCP (the guest's fixed lease) on
// the gateway address.
func (n *Network) serveServices() error {
	at := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(gateway.As4()), Port: 53}
	dnsUDP, err := gonet.DialUDP(n.stack, &at, nil, ipv4.ProtocolNumber)
	if err != nil {
		return err
	}
	dnsTCP, err := gonet.ListenTCP(n.stack, at, ipv4.ProtocolNumber)
	if err != nil {
		return err
	}
	resolver, err := dns.NewWithUpstreamResolver(dnsUDP, dnsTCP, nil, newBoundedResolver(n.ctx, n.cfg.resolver))
	if err != nil {
		return err
	}
	go resolver.Serve()
	go resolver.ServeTCP()

	pool := tap.NewIPPool(prefixNet(subnet))
	pool.Reserve(net.ParseIP(GatewayIP), gatewayMAC)
	pool.Reserve(net.ParseIP(GuestIP), GuestMAC)
	leases, err := dhcp.New(&types.Configuration{Subnet: Subnet, GatewayIP: GatewayIP, MTU: MTU}, n.stack, pool)
	if err != nil {
		return err
	}
	go leases.Serve()
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// exposeForwards listens on the host's 127.0.0.1 (or ForwardAddress) for each forward.
func (n *Network) exposeForwards() error {
	for _, f := range n.cfg.Forwards {
		ln, err := net.Listen("tcp", net.JoinHostPort(cmp.Or(n.cfg.ForwardAddress, "127.0.0.1"), strconv.Itoa(f.Host)))
		if err != nil {
			return fmt.Errorf("forward host port %d: %w (choose another host port)", f.Host, err)
		}
		n.ports = append(n.ports, ln)
		to := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(netip.MustParseAddr(GuestIP).As4()), Port: uint16(f.Guest)}
		n.wg.Add(1)
		go n.forwardPort(ln, to)
	}
	return nil
}

// forwardPort joins each connection on ln to the guest's port; one the guest refuses is closed.
func (n *Network) forwardPort(ln net.Listener, to tcpip.FullAddress) {
	proxy := &tcpproxy.DialProxy{
		// The network's context, so that Close ends a dial the guest leaves unanswered.
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
			defer cancel()
			return gonet.DialContextTCP(ctx, n.stack, to, ipv4.ProtocolNumber)
		},
		OnDialError: func(src net.Conn, _ error) { src.Close() },
	}
	n.serve(ln, proxy.HandleConn)
}

// acceptKernel joins each connection on the socket from the guest's kernel to the switch: the
// kernel connects when the guest brings vec0 up, and again after it takes it down and up. Any other
// process is let go: another guest's kernel (which can find the socket's path) would otherwise get
// this guest's network and its door to the host.
func (n *Network) acceptKernel() {
	n.serve(n.ln, func(c net.Conn) {
		if pid, err := peer.PID(c.(*net.UnixConn)); err != nil || pid <= 0 || !n.admitted()(pid) {
			c.Close()
			return
		}
		// The switch is a LAN's: frames it must not see (a runt deadlocks it) are dropped the same way.
		n.sw.Accept(n.ctx, lan.NewPort(c, nil), types.BessProtocol)
	})
}

// Admit says which process may join the network, by pid: the guest's kernel, and only while it
// runs. It is called as soon as the kernel starts; the kernel connects well after.
func (n *Network) Admit(admit func(pid int) bool) { n.admit.Store(&admit) }

// admitted is Admit's rule, waiting a moment for it: a kernel may connect at once.
func (n *Network) admitted() func(int) bool {
	for deadline := time.Now().Add(2 * time.Second); n.admit.Load() == nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if a := n.admit.Load(); a != nil {
		return *a
	}
	return func(int) bool { return false }
}

// serve hands each connection on ln to handle, in a goroutine of its own, until ln is closed; Close
// ends the connections still open.
func (n *Network) serve(ln net.Listener, handle func(net.Conn)) {
	defer n.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil || !n.track(c) {
			return
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			defer n.untrack(c)
			handle(c)
		}()
	}
}

// track records a host-side connection for Close to end; false when the network is closing.
func (n *Network) track(c net.Conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		c.Close()
		return false
	}
	n.open[c] = true
	return true
}

func (n *Network) untrack(c net.Conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.open, c)
}

// Close stops the network: the listeners, every connection through it, and the stack.
func (n *Network) Close() error {
	n.cancel()
	if n.ln != nil {
		n.ln.Close() // and removes the socket file it made
	}
	for _, ln := range n.ports {
		ln.Close()
	}
	n.mu.Lock()
	n.closed = true
	for c := range n.open {
		c.Close()
	}
	n.mu.Unlock()
	if n.stack != nil {
		n.stack.Close()
	}
	n.wg.Wait()
	if n.stack != nil {
		n.stack.Wait()
	}
	return nil
}

// route decides where on the host a guest's connection to dst goes. The guest chooses dst freely
// (its root can write any packet), so this is the one place the door to the host is kept.
func (n *Network) route(dst netip.Addr, port uint16) (string, error) {
	switch {
	case dst == gateway:
		if !n.cfg.HostAccess {
			return "", ErrHostClosed
		}
		dst = netip.MustParseAddr("127.0.0.1")
	case !dst.Is4() || !dst.IsGlobalUnicast() || subnet.Contains(dst) || dst == netip.IPv4Unspecified():
		// Loopback, unspecified (which reaches the host's loopback), link-local, multicast,
		// broadcast, or the guest's own network: nothing outside is there.
		return "", fmt.Errorf("%s is not an address outside the guest's network", dst)
	case !n.cfg.HostAccess && hostRoute(dst):
		return "", ErrHostClosed
	}
	return netip.AddrPortFrom(dst, port).String(), nil
}

func addrOf(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip.Unmap()
}

// forwardTCP connects a guest's TCP connection to where route sends it, or resets it.
func (n *Network) forwardTCP(r *tcp.ForwarderRequest) {
	// A slot first, before any work on the host: past the bound, nothing is dialled.
	if n.conns.Add(1) > MaxTCP {
		n.conns.Add(-1)
		r.Complete(true)
		return
	}
	id := r.ID()
	target, err := n.route(addrOf(id.LocalAddress), id.LocalPort)
	if err != nil {
		n.conns.Add(-1)
		r.Complete(true)
		return
	}
	d := net.Dialer{Timeout: dialTimeout}
	outbound, err := d.DialContext(n.ctx, "tcp", target)
	if err != nil {
		n.conns.Add(-1)
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, tcpErr := r.CreateEndpoint(&wq)
	r.Complete(false)
	if tcpErr != nil || !n.track(outbound) {
		n.conns.Add(-1)
		outbound.Close()
		return
	}
	proxy := tcpproxy.DialProxy{DialContext: func(context.Context, string, string) (net.Conn, error) { return outbound, nil }}
	go func() {
		defer n.conns.Add(-1)
		defer n.untrack(outbound)
		proxy.HandleConn(gonet.NewTCPConn(&wq, ep))
	}()
}

// forwardUDP relays a guest's UDP flow to where route sends it; the flow ends after a quiet spell.
func (n *Network) forwardUDP(r *udp.ForwarderRequest) {
	if n.flows.Add(1) > MaxUDP {
		n.flows.Add(-1)
		return // dropped, before any work on the host
	}
	id := r.ID()
	target, err := n.route(addrOf(id.LocalAddress), id.LocalPort)
	if err != nil {
		n.flows.Add(-1)
		return // dropped
	}
	var wq waiter.Queue
	ep, tcpErr := r.CreateEndpoint(&wq)
	if tcpErr != nil {
		n.flows.Add(-1)
		return
	}
	proxy, err := forwarder.NewUDPProxy(&idleUDP{gonet.NewUDPConn(&wq, ep)}, func() (net.Conn, error) {
		d := net.Dialer{Timeout: dialTimeout}
		return d.DialContext(n.ctx, "udp", target)
	})
	if err != nil {
		// It fails on nothing today (it only allocates), but a nil proxy would panic in the goroutine:
		// the flow is dropped and its slot given back instead.
		n.flows.Add(-1)
		ep.Close()
		return
	}
	go func() {
		defer n.flows.Add(-1)
		proxy.Run()
		ep.Close()
	}()
}

// idleUDP ends a UDP flow's reads after udpIdle without traffic, so a flow's proxy does not outlive it.
type idleUDP struct{ *gonet.UDPConn }

const udpIdle = 90 * time.Second

func (c *idleUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	c.SetReadDeadline(time.Now().Add(udpIdle))
	return c.UDPConn.ReadFrom(b)
}

func (c *idleUDP) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.SetReadDeadline(time.Now().Add(udpIdle))
	return c.UDPConn.WriteTo(b, addr)
}
