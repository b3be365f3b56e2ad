package uml

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// The slirp network as the guest sees it.
const (
	GuestIP   = "10.0.2.15"
	GatewayIP = "10.0.2.2" // slirp itself; connections to it reach the host's loopback
	DNSIP     = "10.0.2.3"
)

// ErrNoSlirp is returned when networking is asked for and no slirp is installed.
var ErrNoSlirp = errors.New("slirp is not installed (Debian/Ubuntu: apt-get install slirp): it gives the guest networking without root")

// Net is the guest's eth0.
type Net struct {
	// Transport is "slirp" (no privileges: Debian's slirp package) or a raw UML eth0 specification
	// for hosts where the user may use tap devices, e.g. "tuntap,,,tap0" or
	// "vector,transport=tap,ifname=tap0".
	Transport string
	// Slirp is the slirp executable; empty means slirp-fullbolt (plain slirp is rate-limited and did
	// not pass traffic in our tests) found in PATH.
	Slirp string
	// Forwards expose guest TCP ports on the host's 127.0.0.1 (slirp only).
	Forwards []Forward
	// Hostname for the kernel's IP configuration; empty leaves the guest's own.
	Hostname string
}

// Forward maps host 127.0.0.1:Host to guest port Guest.
type Forward struct {
	Host, Guest int
	slirpPort   int // the port slirp listens on for it (see startRelays)
}

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

// SlirpPath finds the slirp executable to use.
func (n *Net) SlirpPath() (string, error) {
	if n.Slirp != "" {
		return n.Slirp, nil
	}
	p, err := exec.LookPath("slirp-fullbolt")
	if err != nil {
		return "", ErrNoSlirp
	}
	return p, nil
}

func (n *Net) args(umlDir string) ([]string, error) {
	if n.Transport != "slirp" {
		if len(n.Forwards) > 0 {
			return nil, errors.New("port forwards need the slirp transport; with tap, reach the guest's address directly")
		}
		return []string{"eth0=" + n.Transport}, nil
	}
	slirp, err := n.SlirpPath()
	if err != nil {
		return nil, err
	}
	// UML splits eth0=slirp,<mac>,<path>,<args> at commas and slirp wants each option as one
	// argument, so a wrapper script passes them (uml-runtime.md).
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\nexec %s", shellQuote(slirp))
	for _, f := range n.Forwards {
		if f.slirpPort == 0 {
			return nil, errors.New("port forwards must be started before the guest (startRelays)")
		}
		fmt.Fprintf(&b, " %s", shellQuote(fmt.Sprintf("redir tcp %d %s:%d", f.slirpPort, GuestIP, f.Guest)))
	}
	b.WriteString("\n")
	wrapper := filepath.Join(umlDir, "slirp")
	if err := os.WriteFile(wrapper, []byte(b.String()), 0o755); err != nil {
		return nil, err
	}
	// The kernel configures the link itself (CONFIG_IP_PNP), so no guest tool or config is needed.
	ip := fmt.Sprintf("ip=%s::%s:255.255.255.0:%s:eth0:off:%s", GuestIP, GatewayIP, n.Hostname, DNSIP)
	return []string{"eth0=slirp,," + wrapper, ip}, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// relay listens on host 127.0.0.1:Host and joins each connection to slirp's redirected port.
//
// slirp (1.0.17) passes a redirected connection to the guest with its original source address; from
// 127.0.0.1 that is a "martian" the guest kernel drops. So slirp listens on a spare port and the relay
// connects to it from the host's own non-loopback address, which the guest answers normally.
type relay struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

func startRelays(forwards []Forward) ([]*relay, error) {
	hostIP, err := hostAddress()
	if err != nil {
		return nil, err
	}
	var relays []*relay
	fail := func(err error) ([]*relay, error) {
		for _, r := range relays {
			r.close()
		}
		return nil, err
	}
	for i := range forwards {
		f := &forwards[i]
		port, err := freePort()
		if err != nil {
			return fail(err)
		}
		f.slirpPort = port
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(f.Host)))
		if err != nil {
			return fail(fmt.Errorf("forward host port %d: %w (choose another host port)", f.Host, err))
		}
		r := &relay{ln: ln, target: net.JoinHostPort(hostIP, strconv.Itoa(port)), conns: map[net.Conn]bool{}}
		relays = append(relays, r)
		go r.serve()
	}
	return relays, nil
}

func (r *relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer c.Close()
			up, err := net.Dial("tcp", r.target)
			if err != nil {
				return
			}
			defer up.Close()
			if !r.track(c, up) {
				return
			}
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(up, c)
			go pipe(c, up)
			<-done
			<-done
			r.untrack(c, up)
		}()
	}
}

func (r *relay) track(cs ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	for _, c := range cs {
		r.conns[c] = true
	}
	return true
}

func (r *relay) untrack(cs ...net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		delete(r.conns, c)
	}
}

func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// hostAddress is an IPv4 address of this host other than loopback, for the relay's connections.
func hostAddress() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String(), nil
		}
	}
	return "", errors.New("port forwarding through slirp needs an IPv4 address on a non-loopback interface of this host, and there is none")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
