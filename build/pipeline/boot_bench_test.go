package pipeline

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/uml"
)

// BenchmarkBoot measures the end-to-end pair (busybox test image; SUML_E2E=1, and SUML_E2E_KERNEL to
// reuse a built kernel): "ready" is kernel start to the login prompt, with a throwaway COW file and
// no network, with the sandbox (Landlock) and without; "idle" boots to the prompt, then samples the host CPU time and resident memory of
// every process of the guest over 5 idle seconds (reported as cpu-% and rss-MiB).
func BenchmarkBoot(b *testing.B) {
	requireE2E(b)
	requireImageTools(b)
	ws, _, _ := e2ePair(b)
	cfg := bootConfig(b, ws, map[string]string{"SUML_BOOT_NET": "none"})
	// The sandbox's cost: the same boot with Landlock (the default) and without.
	for _, mode := range []string{"auto", "off"} {
		cfg := bootConfig(b, ws, map[string]string{"SUML_BOOT_NET": "none", "SUML_BOOT_SANDBOX": mode})
		b.Run("ready/sandbox="+mode, func(b *testing.B) { benchReady(b, cfg) })
	}
	b.Run("idle", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			vm, stop := startBench(b, cfg)
			pgid := vm.Pid()
			cpu0, _ := groupUsage(pgid)
			const window = 5 * time.Second
			time.Sleep(window)
			cpu1, rss := groupUsage(pgid)
			stop()
			b.ReportMetric(100*(cpu1-cpu0).Seconds()/window.Seconds(), "cpu-%")
			b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
		}
	})
}

// benchReady boots the pair b.N times and reports the mean time from kernel start to the prompt.
func benchReady(b *testing.B, cfg config.Config) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		vm, stop := startBench(b, cfg)
		total += vm.Elapsed()
		stop()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready")
}

// startBench boots the pair to its login prompt; the returned function stops it.
func startBench(b *testing.B, cfg config.Config) (*uml.Guest, func()) {
	g, err := prepareGuest(cfg, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	vm, err := uml.Start(context.Background(), g.opts)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := vm.Expect(context.Background(), "login:", time.Minute); err != nil {
		b.Fatal(err)
	}
	return vm, func() { vm.Stop(); g.cleanup() }
}

// groupUsage sums user+system CPU time and resident memory of the processes in a process group.
func groupUsage(pgid int) (cpu time.Duration, rss int64) {
	tick := float64(100) // USER_HZ
	page := int64(os.Getpagesize())
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err != nil || g != pgid {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		// After the command: state(0) ... utime(11) stime(12) ... rss(21)
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		pages, _ := strconv.ParseInt(f[21], 10, 64)
		cpu += time.Duration((ut + st) / tick * float64(time.Second))
		rss += pages * page
	}
	return cpu, rss
}
