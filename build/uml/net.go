package uml

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/simple-uml/simple-uml/build/usernet"
)

// UserNet is the Transport of the network built in (usernet): no privileges, no helper program, and
// the host closed to the guest unless HostAccess opens it.
const UserNet = "user"

// Net is the guest's network device.
type Net struct {
	// Transport is UserNet or a raw UML eth0 specification for hosts where the user may use tap
	// devices, e.g. "tuntap,,,tap0" or "vector,transport=tap,ifname=tap0".
	Transport string
	// HostAccess lets the guest reach the host's loopback services as usernet.GatewayIP (UserNet).
	HostAccess bool
	// Forwards expose guest TCP ports on the host's 127.0.0.1 (UserNet), or on ForwardAddress
	// (usernet.Config's).
	Forwards       []usernet.Forward
	ForwardAddress string `json:",omitempty"`
	// Hostname for the kernel's IP configuration; empty leaves the guest's own.
	Hostname string
}

// maxSocketPath is what fits in a unix socket address (sun_path, with its terminating NUL).
const maxSocketPath = 107

// raw says whether n is a raw UML transport (tap devices, packet sockets): a door the user opened,
// which the sandbox leaves the kernel its sockets and network capabilities for.
func (n *Net) raw() bool { return n != nil && n.Transport != UserNet }

// socket is where the kernel meets the user network, in the boot's private folder.
func (n *Net) socket(umlDir string) string { return filepath.Join(umlDir, "net.sock") }

func (n *Net) args(umlDir string) ([]string, error) {
	if n.raw() {
		if len(n.Forwards) > 0 || n.HostAccess {
			return nil, fmt.Errorf("port forwards and host access need boot.net = %q; with %q, reach the guest's address directly", UserNet, n.Transport)
		}
		if strings.ContainsFunc(n.Transport, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return nil, fmt.Errorf("network transport %q: the kernel command line would take its white space as more parameters", n.Transport)
		}
		return []string{"eth0=" + n.Transport}, nil
	}
	sock := n.socket(umlDir)
	if len(sock) > maxSocketPath {
		return nil, fmt.Errorf("the guest network's socket %s is longer than a unix socket address allows (%d bytes): set TMPDIR to a shorter folder", sock, maxSocketPath)
	}
	dev := fmt.Sprintf("%s:transport=bess,dst=%s,depth=128,mtu=%d,mac=%s", usernet.Interface, sock, usernet.MTU, usernet.GuestMAC)
	// The kernel configures the link itself (CONFIG_IP_PNP), so no guest tool or config is needed.
	ip := fmt.Sprintf("ip=%s::%s:255.255.255.0:%s:%s:off:%s", usernet.GuestIP, usernet.GatewayIP, n.Hostname, usernet.Interface, usernet.GatewayIP)
	return []string{dev, ip}, nil
}

// start runs the user network for a boot whose runtime folder is umlDir; nil when there is none.
func (n *Net) start(umlDir string) (*usernet.Network, error) {
	if n == nil || n.raw() {
		return nil, nil
	}
	return usernet.Start(usernet.Config{Socket: n.socket(umlDir), HostAccess: n.HostAccess, Forwards: n.Forwards, ForwardAddress: n.ForwardAddress})
}

// LANPort is one of the guest's interfaces on a lab LAN: a switch in this process (build/lan) the
// kernel's vector driver joins over a unixpacket socket, like the user network's.
type LANPort struct {
	Socket string // the LAN's socket
	MAC    string // the interface's address, unique on the LAN
}

// LANDevice is the guest's name for its n-th LAN interface (from 1; vec0 is the user network's).
func LANDevice(n int) string { return fmt.Sprintf("vec%d", n) }

func (p LANPort) arg(n int) (string, error) {
	if len(p.Socket) > maxSocketPath {
		return "", fmt.Errorf("the LAN socket %s is longer than a unix socket address allows (%d bytes): set TMPDIR or the cache to a shorter folder", p.Socket, maxSocketPath)
	}
	if _, err := net.ParseMAC(p.MAC); err != nil || strings.ContainsAny(p.MAC, ",= ") {
		return "", fmt.Errorf("LAN interface %s: MAC address %q: %v", LANDevice(n), p.MAC, err)
	}
	return fmt.Sprintf("%s:transport=bess,dst=%s,depth=128,mac=%s", LANDevice(n), p.Socket, p.MAC), nil
}
