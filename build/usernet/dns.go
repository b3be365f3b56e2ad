package usernet

import (
	"context"
	"errors"
	"net"
	"time"
)

// MaxDNS is how many of a guest's DNS questions the host's resolver works on at once. Each holds a
// goroutine and a socket of this process to the host's resolver for up to dnsTimeout, and a guest asks
// as fast as it likes: the rest are answered "no such name" at once.
const MaxDNS = 64

// dnsTimeout bounds one question to the host's resolver (Close cancels those in flight).
const dnsTimeout = 10 * time.Second

var errDNSBusy = errors.New("the guest has too many DNS questions in flight")

// boundedResolver is the host's resolver as the guest's DNS server asks it, MaxDNS questions at once.
type boundedResolver struct {
	ctx      context.Context // the network's: Close ends what is in flight
	upstream *net.Resolver
	slots    chan struct{}
}

func newBoundedResolver(ctx context.Context, upstream *net.Resolver) *boundedResolver {
	if upstream == nil {
		upstream = net.DefaultResolver
	}
	return &boundedResolver{ctx: ctx, upstream: upstream, slots: make(chan struct{}, MaxDNS)}
}

// ask runs lookup with a slot and a deadline, or fails at once when every slot is taken.
func ask[T any](r *boundedResolver, lookup func(ctx context.Context) (T, error)) (T, error) {
	select {
	case r.slots <- struct{}{}:
	default:
		var none T
		return none, errDNSBusy
	}
	defer func() { <-r.slots }()
	ctx, cancel := context.WithTimeout(r.ctx, dnsTimeout)
	defer cancel()
	return lookup(ctx)
}

// The lookups gvisor-tap-vsock's DNS server makes; its own context (context.TODO) is replaced.

func (r *boundedResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	return ask(r, func(ctx context.Context) ([]net.IPAddr, error) { return r.upstream.LookupIPAddr(ctx, host) })
}

func (r *boundedResolver) LookupCNAME(_ context.Context, host string) (string, error) {
	return ask(r, func(ctx context.Context) (string, error) { return r.upstream.LookupCNAME(ctx, host) })
}

func (r *boundedResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	return ask(r, func(ctx context.Context) ([]*net.MX, error) { return r.upstream.LookupMX(ctx, name) })
}

func (r *boundedResolver) LookupNS(_ context.Context, name string) ([]*net.NS, error) {
	return ask(r, func(ctx context.Context) ([]*net.NS, error) { return r.upstream.LookupNS(ctx, name) })
}

func (r *boundedResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	type srv struct {
		cname   string
		records []*net.SRV
	}
	got, err := ask(r, func(ctx context.Context) (srv, error) {
		cname, records, err := r.upstream.LookupSRV(ctx, service, proto, name)
		return srv{cname, records}, err
	})
	return got.cname, got.records, err
}

func (r *boundedResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	return ask(r, func(ctx context.Context) ([]string, error) { return r.upstream.LookupTXT(ctx, name) })
}
