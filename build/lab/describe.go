package lab

import (
	"fmt"
	"io"
	"strings"

	"github.com/simple-uml/simple-uml/build/uml"
)

// Describe says what runs: each guest's addresses, uplink and forwards, the LANs' captures, and
// where the consoles are logged.
func (r *Running) Describe(w io.Writer) {
	fmt.Fprintf(w, "lab %s is up (Ctrl-C stops it):\n", r.Lab.Name)
	for _, g := range r.Lab.Guests {
		var addrs []string
		for j, i := range g.Interfaces {
			addrs = append(addrs, fmt.Sprintf("%s %s on %s", uml.LANDevice(j+1), i.Address, i.LAN))
		}
		if g.Uplink {
			door := "host closed"
			if g.HostAccess {
				door = "host loopback OPEN as 10.0.2.2"
			}
			addrs = append(addrs, "uplink vec0 ("+door+")")
		}
		if g.Forward != "" {
			addrs = append(addrs, "forwards 127.0.0.1 "+g.Forward)
		}
		if g.Nice != 0 {
			addrs = append(addrs, fmt.Sprintf("nice %d", g.Nice))
		}
		fmt.Fprintf(w, "  %-12s %s\n    console: %s\n", g.Name, strings.Join(addrs, "; "), r.ConsolePath(g.Name))
	}
	for _, n := range r.Lab.LANs {
		if n.Capture {
			fmt.Fprintf(w, "  LAN %s captured to %s\n", n.Name, r.CapturePath(n.Name))
		}
	}
}
