package usernet

import (
	"net/netip"
	"syscall"
)

// hostRoute reports whether the host's routing tables deliver a to the host itself rather than
// through an interface to another machine: a local route (its own addresses, 127/8, any prefix
// routed to lo with `ip route add local`), a broadcast route (a subnet's broadcast address, which
// services bound to 0.0.0.0 receive), anycast, or multicast. The kernel's answer, not a list of
// interface addresses: those miss the broadcast and local routes. Every table and family is read;
// an error reading them counts as the host's.
func hostRoute(a netip.Addr) bool {
	data, err := syscall.NetlinkRIB(syscall.RTM_GETROUTE, syscall.AF_UNSPEC)
	if err != nil {
		return true
	}
	msgs, err := syscall.ParseNetlinkMessage(data)
	if err != nil {
		return true
	}
	for _, m := range msgs {
		if m.Header.Type != syscall.RTM_NEWROUTE || len(m.Data) < syscall.SizeofRtMsg {
			continue
		}
		// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
		family, bits, kind := m.Data[0], int(m.Data[1]), m.Data[7]
		switch kind {
		case syscall.RTN_LOCAL, syscall.RTN_BROADCAST, syscall.RTN_ANYCAST, syscall.RTN_MULTICAST:
		default:
			continue
		}
		if p, ok := routeDst(&m, family, bits); ok && p.Contains(a) {
			return true
		}
	}
	return false
}

// routeDst is a route message's destination prefix; a route without RTA_DST is the default, 0/0.
func routeDst(m *syscall.NetlinkMessage, family byte, bits int) (netip.Prefix, bool) {
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err != nil {
		return netip.Prefix{}, false
	}
	for _, at := range attrs {
		if at.Attr.Type == syscall.RTA_DST {
			addr, ok := netip.AddrFromSlice(at.Value)
			if !ok {
				return netip.Prefix{}, false
			}
			p, err := addr.Unmap().Prefix(bits)
			return p, err == nil
		}
	}
	switch family {
	case syscall.AF_INET:
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
	case syscall.AF_INET6:
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0), true
	}
	return netip.Prefix{}, false
}
