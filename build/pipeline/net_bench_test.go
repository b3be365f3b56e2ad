package pipeline

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/uml"
)

// benchNetSettings boot the guest with its network.
var benchNetSettings = map[string]string{"SUML_BOOT_NET": "user"}

// BenchmarkNetwork measures the guest's network (busybox test image; SUML_E2E=1): "ready" is kernel
// start to the login prompt with the network on; "round-trip" sends one byte from the host through a
// forwarded port to an echo server in the guest and reads it back; "host-to-guest" and
// "guest-to-host" move 64 MiB through a forwarded port between the host and dd in the guest (dd reads
// and writes the socket itself, 64 KiB at a time: busybox's nc copies in small pieces, and a UML
// guest pays dearly for each system call).
func BenchmarkNetwork(b *testing.B) {
	requireE2E(b)
	requireImageTools(b)
	ws, _, _ := e2ePair(b)
	echo, sink, source := freeLocalPort(b), freeLocalPort(b), freeLocalPort(b)
	settings := map[string]string{"SUML_BOOT_FORWARD": fmt.Sprintf("%d:7,%d:9,%d:19", echo, sink, source)}
	for k, v := range benchNetSettings {
		settings[k] = v
	}
	cfg := bootConfig(b, ws, settings)
	b.Run("ready", func(b *testing.B) { benchReady(b, cfg) })
	vm := bootLoggedIn(b, cfg)
	const size = 64 << 20
	startGuestServers(b, vm, map[int]string{
		7:  "cat",
		9:  "dd of=/dev/null bs=64k",
		19: fmt.Sprintf("dd if=/dev/zero bs=64k count=%d", size>>16),
	})
	b.Run("round-trip", func(b *testing.B) {
		c := dialForward(b, echo)
		defer c.Close()
		buf := []byte{'x'}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N), "µs/round-trip")
	})
	b.Run("host-to-guest", func(b *testing.B) {
		zeros := make([]byte, 1<<16)
		var total time.Duration
		for i := 0; i < b.N; i++ {
			start := time.Now()
			c := dialForward(b, sink)
			for sent := 0; sent < size; sent += len(zeros) {
				if _, err := c.Write(zeros); err != nil {
					b.Fatal(err)
				}
			}
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c) // until dd has read everything and the guest closes
			c.Close()
			total += time.Since(start)
		}
		b.ReportMetric(float64(size>>20)*float64(b.N)/total.Seconds(), "MiB/s")
	})
	b.Run("guest-to-host", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			start := time.Now()
			c := dialForward(b, source)
			n, err := io.Copy(io.Discard, c)
			c.Close()
			total += time.Since(start)
			if err != nil || n != size {
				b.Fatalf("read %d bytes of %d from the guest: %v", n, size, err)
			}
		}
		b.ReportMetric(float64(size>>20)*float64(b.N)/total.Seconds(), "MiB/s")
	})
}

// startGuestServers runs a persistent busybox nc server on each guest port, with the command's
// standard input and output on each connection, and waits until all of them listen.
func startGuestServers(b *testing.B, vm *uml.Guest, servers map[int]string) {
	ctx := context.Background()
	wait := "true"
	for port, cmd := range servers {
		start := fmt.Sprintf("nc -ll -p %d -e sh -c '%s 2>/dev/null' >/dev/null 2>&1 &", port, cmd)
		if _, status, err := vm.Run(ctx, start, 10*time.Second); err != nil || status != 0 {
			b.Fatalf("%s: status %d, %v", start, status, err)
		}
		wait += fmt.Sprintf(" && netstat -ltn | grep -q ':%d '", port)
	}
	if _, status, err := vm.Run(ctx, fmt.Sprintf("for i in $(seq 100); do %s && break; sleep 0.1; done; %s", wait, wait), 20*time.Second); err != nil || status != 0 {
		b.Fatalf("the guest's servers did not listen: status %d, %v", status, err)
	}
}

// dialForward connects to a guest server through its forwarded host port.
func dialForward(b *testing.B, port int) net.Conn {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	return c
}
