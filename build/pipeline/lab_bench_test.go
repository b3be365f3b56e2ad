package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// benchLab is the router lab of three guests from the busybox test image; the router's and b's web
// servers hold a 16 MiB file for the throughput measurements.
const benchLab = `
[[lan]]
name = "lan1"

[[lan]]
name = "lan2"

[[guest]]
name = "a"
interface = [{ lan = "lan1", address = "10.1.0.1/24" }]
routes = ["10.2.0.0/24 via 10.1.0.254"]

[[guest]]
name = "router"
forwarding = true
interface = [{ lan = "lan1", address = "10.1.0.254/24" }, { lan = "lan2", address = "10.2.0.254/24" }]
run = ["mkdir -p /srv && dd if=/dev/zero of=/srv/big bs=64k count=256 2>/dev/null && httpd -p 80 -h /srv"]

[[guest]]
name = "b"
interface = [{ lan = "lan2", address = "10.2.0.2/24" }]
routes = ["10.1.0.0/24 via 10.2.0.254"]
run = ["mkdir -p /srv && dd if=/dev/zero of=/srv/big bs=64k count=256 2>/dev/null && httpd -p 80 -h /srv"]
`

// BenchmarkLab measures the three-guest lab (SUML_E2E=1, and SUML_E2E_KERNEL to reuse a built
// kernel): "ready" is the start of lab.Start to every guest up, logged in and configured; "idle"
// samples each guest's processes for 5 idle seconds (cpu-% and rss-MiB per guest); "throughput"
// fetches a 16 MiB file with busybox wget from a: the router's, on their LAN ("lan"), and b's, through
// the router ("routed").
func BenchmarkLab(b *testing.B) {
	requireE2E(b)
	requireImageTools(b)
	ctx := context.Background()
	cfg := labConfig(b, map[string]string{"bench": benchLab}, nil)
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
	b.Run("idle", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			guests := []string{"a", "router", "b"}
			var cpu0 [3]time.Duration
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
			b.ReportMetric(cpu/3, "cpu-%/guest")
			b.ReportMetric(rss/3, "rss-MiB/guest")
		}
	})
	for name, addr := range map[string]string{"lan": "10.1.0.254", "routed": "10.2.0.2"} {
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
