package uml

import (
	"fmt"
	"io"

	"github.com/simple-uml/simple-uml/build/usernet"
)

// DescribeDoors says, a line each, what of the host a boot with o reaches: its network, the host's
// loopback services, forwarded ports, a shared folder, and its sandbox. Each is said every time,
// open or closed, for the banner of a boot a person starts: doors are opened only by settings.
func DescribeDoors(w io.Writer, o Options) {
	switch n := o.Net; {
	case n == nil:
		fmt.Fprintf(w, "  network: none (boot.net = %q gives the guest one)\n", UserNet)
	case n.Transport == UserNet:
		fmt.Fprintf(w, "  network: user-mode, guest %s, gateway and DNS %s\n", usernet.GuestIP, usernet.GatewayIP)
		if n.HostAccess {
			fmt.Fprintf(w, "  host services: OPEN: the host's loopback services are reachable as %s (boot.host_access)\n", usernet.GatewayIP)
		} else {
			fmt.Fprintf(w, "  host services: closed: the guest reaches neither the host's loopback nor its addresses (boot.host_access opens them)\n")
		}
		for _, f := range n.Forwards {
			fmt.Fprintf(w, "  forward: host 127.0.0.1:%d -> guest port %d\n", f.Host, f.Guest)
		}
	default:
		fmt.Fprintf(w, "  network: OPEN: %s, a device of this host (the guest is on its network)\n", n.Transport)
	}
	if o.Hostfs != "" {
		fmt.Fprintf(w, "  host files: OPEN: %s is shared read-write (in the guest: mount -t hostfs none /mnt)\n", o.Hostfs)
	} else {
		fmt.Fprintf(w, "  host files: none shared (boot.hostfs / SUML_BOOT_HOSTFS shares one folder)\n")
	}
	fmt.Fprintf(w, "  sandbox: %s\n", DescribeSandbox(o))
}
