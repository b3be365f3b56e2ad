// Command guestflood is what root in a guest runs to grow what simple-uml keeps for it on the host:
// UDP flows and TCP connections through the user network, console output, source addresses and
// runt frames on a LAN. TestGuestFloods builds it (static, for the guest) and puts it in the image.
//
//	guestflood udp N HOST:PORT    one datagram from each of N source ports (a new flow each)
//	guestflood tcp N HOST:PORT S  N connections to HOST:PORT, held S seconds
//	guestflood console BYTES      BYTES of text to /dev/console
//	guestflood macs N IFACE       N broadcast frames on IFACE, each from a source address of its own
//	guestflood runts N IFACE      N frames of 11 bytes on IFACE (shorter than an Ethernet header)
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "guestflood:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 || args[0] != "console" && len(args) < 3 {
		return fmt.Errorf("usage: guestflood udp|tcp|console|macs|runts N ...")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	switch args[0] {
	case "udp":
		return udpFlows(n, args[2])
	case "tcp":
		hold := 3
		if len(args) > 3 {
			hold, _ = strconv.Atoi(args[3])
		}
		return tcpConnections(n, args[2], time.Duration(hold)*time.Second)
	case "console":
		return consoleText(n)
	case "macs":
		return frames(n, args[2], 60)
	case "runts":
		return frames(n, args[2], 11)
	}
	return fmt.Errorf("unknown flood %q", args[0])
}

// udpFlows sends one datagram to addr from each of n sockets: n flows (a source port each) to one
// service, which the user network keeps until they are quiet for a while.
func udpFlows(n int, addr string) error {
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return err
	}
	sent := 0
	for i := 0; i < n; i++ {
		c, err := net.DialUDP("udp4", nil, to)
		if err != nil {
			return err
		}
		if _, err := c.Write([]byte("flow")); err == nil {
			sent++
		}
		c.Close()
	}
	fmt.Printf("udp: %d datagrams from %d source ports\n", sent, n)
	return nil
}

func tcpConnections(n int, addr string, hold time.Duration) error {
	var conns []net.Conn
	refused := 0
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
		if err != nil {
			refused++
			continue
		}
		conns = append(conns, c)
	}
	fmt.Printf("tcp: %d connected, %d refused; holding them %s\n", len(conns), refused, hold)
	time.Sleep(hold)
	for _, c := range conns {
		c.Close()
	}
	return nil
}

func consoleText(n int) error {
	f, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 64<<10)
	line := []byte("guestflood console text, over and over, to grow what the host keeps of it........\n")
	for written := 0; written < n; written += len(line) {
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return w.Flush()
}

// frames sends n broadcast frames of size bytes on iface through a packet socket; frames of 60 bytes
// each come from a source address of their own.
func frames(n int, iface string, size int) error {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	frame := make([]byte, size)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	sent := 0
	var refused error
	for i := 0; i < n; i++ {
		if size >= 14 {
			// A locally administered unicast source address, different each frame; an experimental
			// ethertype.
			copy(frame[6:], []byte{0x02, 0x5a, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
			frame[12], frame[13] = 0x88, 0xb5
		}
		if err := unix.Sendto(fd, frame, 0, to); err == nil {
			sent++
		} else {
			refused = err
		}
	}
	fmt.Printf("%s: %d frames of %d bytes sent", iface, sent, size)
	if refused != nil {
		fmt.Printf(", %d refused (%v)", n-sent, refused)
	}
	fmt.Println()
	return nil
}
