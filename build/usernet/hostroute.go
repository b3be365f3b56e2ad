package usernet

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// hostRoute reports whether the host's kernel delivers a to the host itself rather than through an
// interface to another machine: it asks the kernel's routing decision for a, as `ip route get` does
// (RTM_GETROUTE), and a local, broadcast, anycast or multicast route is the host's. That covers its
// own addresses, 127/8, a subnet's broadcast address (which services bound to 0.0.0.0 receive) and
// any prefix routed to lo with `ip route add local`, in whatever table policy routing picks: the
// kernel's answer, not a list of interface addresses, which misses the last two. No route at all is
// not the host's (the dial fails); any other error counts as the host's.
func hostRoute(a netip.Addr) bool {
	kind, err := routeType(a)
	if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
		return false
	}
	if err != nil {
		return true
	}
	switch kind {
	case unix.RTN_LOCAL, unix.RTN_BROADCAST, unix.RTN_ANYCAST, unix.RTN_MULTICAST:
		return true
	}
	return false
}

// routeType asks the kernel which route it would take to a, and returns its type (RTN_*).
func routeType(a netip.Addr) (uint8, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	if err := unix.Sendto(fd, routeRequest(a), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, err
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return 0, err
	}
	for _, m := range msgs {
		switch {
		case m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4:
			if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
				return 0, syscall.Errno(-errno)
			}
		case m.Header.Type == unix.RTM_NEWROUTE && len(m.Data) >= unix.SizeofRtMsg:
			return m.Data[7], nil // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type
		}
	}
	return 0, errors.New("no answer from the kernel's routing")
}

// routeRequest is RTM_GETROUTE for the one destination a: a netlink header, a struct rtmsg, and the
// address as RTA_DST.
func routeRequest(a netip.Addr) []byte {
	a = a.Unmap()
	family, bits := byte(unix.AF_INET), byte(32)
	if a.Is6() {
		family, bits = unix.AF_INET6, 128
	}
	dst := a.AsSlice()
	attrLen := unix.SizeofRtAttr + len(dst)
	total := unix.NLMSG_HDRLEN + unix.SizeofRtMsg + attrLen
	b := make([]byte, total)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(total))
	ne.PutUint16(b[4:], unix.RTM_GETROUTE)
	ne.PutUint16(b[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], 1) // sequence
	rt := b[unix.NLMSG_HDRLEN:]
	rt[0], rt[1] = family, bits
	attr := rt[unix.SizeofRtMsg:]
	ne.PutUint16(attr[0:], uint16(attrLen))
	ne.PutUint16(attr[2:], unix.RTA_DST)
	copy(attr[unix.SizeofRtAttr:], dst)
	return b
}
