package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkLab measures the end-to-end test's lab of four guests (threeGuests: a and b on lan1, c on
// lan2, the router between; SUML_E2E=1, and SUML_E2E_KERNEL to reuse a built kernel): "ready" is the
// start of lab.Start to every guest up, logged in and configured; "idle" samples each guest's
// processes for 5 idle seconds (cpu-% and rss-MiB per guest); "throughput" fetches a 16 MiB file with
// busybox wget in a from busybox httpd in b, on their LAN ("lan"), and in c, through the router
// ("routed").
func BenchmarkLab(b *testing.B) {
	requireE2E(b)
	requireImageTools(b)
	ctx := context.Background()
	cfg := labConfig(b, map[string]string{"bench": fmt.Sprintf(threeGuests, freeLocalPort(b))}, nil)
	b.Run("ready", func(b *testing.B) {
		var total time.Duration
		for i := 0; i < b.N; i++ {
			start := time.Now()
			r, err := startLab(ctx, cfg, "bench", testLog(b))
			if err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
			r.Stop()
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready")
	})
	r, err := startLab(ctx, cfg, "bench", testLog(b))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Stop()
	for _, g := range []string{"b", "c"} {
		if out, status, err := r.Run(ctx, g, "dd if=/dev/zero of=/srv/big bs=64k count=256 2>&1"); err != nil || status != 0 {
			b.Fatalf("%s: %q %d %v", g, out, status, err)
		}
	}
	b.Run("idle", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			guests := []string{"a", "b", "router", "c"}
			var cpu0 [4]time.Duration
			for j, g := range guests {
				cpu0[j], _ = groupUsage(r.Pid(g))
			}
			const window = 5 * time.Second
			time.Sleep(window)
			var cpu, rss float64
			for j, g := range guests {
				c, m := groupUsage(r.Pid(g))
				cpu += 100 * (c - cpu0[j]).Seconds() / window.Seconds()
				rss += float64(m) / (1 << 20)
			}
			b.ReportMetric(cpu/4, "cpu-%/guest")
			b.ReportMetric(rss/4, "rss-MiB/guest")
		}
	})
	for name, addr := range map[string]string{"lan": "10.1.0.2", "routed": "10.2.0.3"} {
		b.Run("throughput/"+name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				out, status, err := r.Run(ctx, "a", fmt.Sprintf("wget -q -O /dev/null http://%s/big", addr))
				if err != nil || status != 0 {
					b.Fatalf("wget: %q %d %v", out, status, err)
				}
				total += time.Since(start)
			}
			b.ReportMetric(16*float64(b.N)/total.Seconds(), "MiB/s")
		})
	}
}
