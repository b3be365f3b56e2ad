package usernet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestDNSQuestionsBounded: a guest asking 500 questions at once of a resolver that never answers (a
// server on loopback that reads and drops) gets MaxDNS of them to the resolver and the rest refused
// at once; the process holds a bounded number of sockets meanwhile; Close's context ends the rest.
func TestDNSQuestionsBounded(t *testing.T) {
	blackhole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer blackhole.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := blackhole.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	upstream := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", blackhole.LocalAddr().String())
	}}
	ctx, cancel := context.WithCancel(context.Background())
	r := newBoundedResolver(ctx, upstream)

	fds := func() int { entries, _ := os.ReadDir("/proc/self/fd"); return len(entries) }
	before := fds()
	var refused atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.LookupIPAddr(context.TODO(), fmt.Sprintf("q%d.example.", i)); errors.Is(err, errDNSBusy) {
				refused.Add(1)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the questions that got a slot are waiting on the resolver
	during := fds()
	if n := refused.Load(); n < 500-MaxDNS {
		t.Errorf("%d questions refused at once, want %d at least", n, 500-MaxDNS)
	}
	// A question may use a socket for each address family it asks.
	if during-before > 2*MaxDNS+8 {
		t.Errorf("%d sockets more while the questions wait, want %d at most", during-before, 2*MaxDNS+8)
	}
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the questions in flight did not end within 5 s of Close")
	}
	t.Logf("%d sockets more while %d questions waited; %d refused at once", during-before, MaxDNS, refused.Load())
}

// TestDNSAnswers: through the bound, a question is answered as the resolver answers it.
func TestDNSAnswers(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 7)})
		}
		w.WriteMsg(m)
	})}
	go server.ActivateAndServe()
	defer server.Shutdown()
	upstream := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	r := newBoundedResolver(context.Background(), upstream)
	addrs, err := r.LookupIPAddr(context.TODO(), "host.test.")
	if err != nil || len(addrs) != 1 || !addrs[0].IP.Equal(net.IPv4(192, 0, 2, 7)) {
		t.Errorf("LookupIPAddr: %v %v, want 192.0.2.7", addrs, err)
	}
}
