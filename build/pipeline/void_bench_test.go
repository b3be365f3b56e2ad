package pipeline

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/rootfs"
	"github.com/simple-uml/simple-uml/build/uml"
	"github.com/simple-uml/simple-uml/build/xbps"
)

// BenchmarkVoid measures the real Void base system of ../shared/fixtures/void-2021 (SUML_E2E=1;
// SUML_E2E_KERNEL reuses a built kernel), one sub-benchmark a step a user waits for:
//   - configure: `mage rootfs` from a warm download cache, reporting the configure boot and its two
//     slowest scripts (ca-certificates' update-ca-certificates, glibc-locales' localedef) in seconds;
//   - boot: kernel start to runit's stage 1, stage 1 (mounts, udev, sysctl), stage 2 to the login
//     prompt, in ms;
//   - exec: the cost of starting a program in the guest (fork and exec of /bin/true, 200 times) beside
//     the same loop on the host, in ms each: what UML adds to every script;
//   - test: `mage test` on the system, boot to power-off, in seconds.
func BenchmarkVoid(b *testing.B) {
	requireE2E(b)
	requireImageTools(b)
	ws, _, _ := voidSystem(b)
	b.Run("configure", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			os.Remove(filepath.Join(ws, "dist", voidRecipe+".json"))
			var log bytes.Buffer
			if _, err := Rootfs(context.Background(), voidConfig(b, ws, nil), voidRecipe, &log); err != nil {
				b.Fatal(err)
			}
			m := regexp.MustCompile(`configure boot done in ([0-9.]+m?s)`).FindStringSubmatch(log.String())
			if m == nil {
				b.Fatalf("no configure boot time in:\n%s", log.String())
			}
			d, _ := time.ParseDuration(m[1])
			b.ReportMetric(d.Seconds(), "configure-s")
			console, _ := os.ReadFile(filepath.Join(ws, "cache", "rootfs", voidRecipe+"-configure.log"))
			for _, s := range rootfs.ScriptTimes(string(console)) {
				name, _, _ := xbps.SplitPkgver(s.Pkgver)
				if s.Action == "post" && (name == "ca-certificates" || name == "glibc-locales") {
					b.ReportMetric(s.Took.Seconds(), name+"-s")
				}
			}
		}
	})
	cfg := voidConfig(b, ws, map[string]string{"SUML_BOOT_NET": "none"})
	b.Run("boot", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			g, err := prepareGuest(cfg, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
			vm, err := uml.Start(context.Background(), g.opts)
			if err != nil {
				b.Fatal(err)
			}
			var at []time.Duration
			for _, mark := range []string{"enter stage: /etc/runit/1", "enter stage: /etc/runit/2", "login:"} {
				if _, err := vm.Expect(context.Background(), mark, time.Minute); err != nil {
					b.Fatal(err)
				}
				at = append(at, vm.Elapsed())
			}
			vm.Stop()
			g.cleanup()
			b.ReportMetric(float64(at[0].Milliseconds()), "kernel-ms")
			b.ReportMetric(float64((at[1] - at[0]).Milliseconds()), "stage1-ms")
			b.ReportMetric(float64((at[2] - at[1]).Milliseconds()), "stage2-to-login-ms")
		}
	})
	b.Run("exec", func(b *testing.B) {
		const loop = `i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done`
		vm := bootLoggedIn(b, cfg)
		for i := 0; i < b.N; i++ {
			out, _, err := vm.Run(context.Background(), `read a _ </proc/uptime; `+loop+`; read z _ </proc/uptime; echo "$a $z"`, time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			f := strings.Fields(out)
			if len(f) != 2 {
				b.Fatalf("guest answered %q", out)
			}
			a, _ := strconv.ParseFloat(f[0], 64)
			z, _ := strconv.ParseFloat(f[1], 64)
			b.ReportMetric((z-a)*1000/200, "guest-ms/exec")
			start := time.Now()
			if err := exec.Command("sh", "-c", loop).Run(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/200, "host-ms/exec")
		}
	})
	b.Run("test", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			start := time.Now()
			if _, err := GuestTest(context.Background(), voidConfig(b, ws, nil), io.Discard); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(time.Since(start).Seconds(), "test-s")
		}
	})
}
