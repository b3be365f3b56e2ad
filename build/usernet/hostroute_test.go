package usernet

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// netnsSwitch makes the test binary run TestRouteAsksTheRoutingTables's checks inside the network
// namespace the test made for it.
const netnsSwitch = "SUML_USERNET_IN_NETNS"

// TestRouteAsksTheRoutingTables: with the door closed, a guest reaches no address the host's routing
// tables deliver to the host itself: a subnet's broadcast address, every address of a prefix routed
// locally (`ip route add local`), its own addresses; a neighbour on the same subnet stays reachable.
// It runs in a network namespace of its own (needs root, as CI has), where nothing is sent: route
// only decides.
func TestRouteAsksTheRoutingTables(t *testing.T) {
	if os.Getenv(netnsSwitch) == "1" {
		routeInNetns(t)
		return
	}
	if os.Geteuid() != 0 {
		if os.Getenv("SUML_E2E") == "1" {
			t.Fatal("this test makes a network namespace: run it as root (CI does)")
		}
		t.Skip("needs root for a network namespace")
	}
	cmd := exec.Command("unshare", "--net", os.Args[0], "-test.run=^TestRouteAsksTheRoutingTables$", "-test.v")
	cmd.Env = append(os.Environ(), netnsSwitch+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("in a network namespace: %v\n%s", err, out)
	}
}

func routeInNetns(t *testing.T) {
	for _, c := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "suml0", "type", "veth", "peer", "name", "suml1"},
		{"addr", "add", "192.0.2.10/24", "brd", "+", "dev", "suml0"},
		{"link", "set", "suml0", "up"},
		{"route", "add", "local", "198.51.100.0/24", "dev", "lo"},
	} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	n := &Network{cfg: Config{}}
	for _, c := range []struct {
		dst     string
		refused bool
	}{
		{"192.0.2.255", true},  // the subnet's broadcast: a service on 0.0.0.0 hears it
		{"198.51.100.7", true}, // in a prefix routed to the host itself
		{"198.51.100.200", true},
		{"192.0.2.10", true},   // the host's own address on that interface
		{"192.0.2.20", false},  // a neighbour on the subnet
		{"203.0.113.5", false}, // elsewhere (no route here, but not the host's)
	} {
		_, err := n.route(netip.MustParseAddr(c.dst), 53)
		if refused := err != nil; refused != c.refused {
			t.Errorf("route(%s) with the door closed: %v, want refused %v", c.dst, err, c.refused)
		}
		if c.refused && err != ErrHostClosed {
			t.Errorf("route(%s): %v, want the door named", c.dst, err)
		}
	}
}

// BenchmarkHostRoute is what the closed door costs each connection or UDP flow a guest starts: one
// read of the host's routing tables.
func BenchmarkHostRoute(b *testing.B) {
	dst := netip.MustParseAddr("203.0.113.5")
	for b.Loop() {
		hostRoute(dst)
	}
}
