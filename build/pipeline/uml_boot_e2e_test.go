package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/kconf"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/releasedir"
	"github.com/simple-uml/simple-uml/build/uml"
	"github.com/simple-uml/simple-uml/build/usernet"
)

// bootConfig is a user's configuration for the end-to-end pair's dist/ (see e2ePair), with extra
// SUML_* settings.
func bootConfig(t testing.TB, ws string, extra map[string]string) config.Config {
	t.Helper()
	env := map[string]string{
		"SUML_RECIPES":       filepath.Join(ws, "recipes"),
		"SUML_ROOTFS_RECIPE": "test",
		"SUML_DIST":          filepath.Join(ws, "dist"),
		"SUML_CACHE":         filepath.Join(t.TempDir(), "cache"),
		"SUML_BOOT_TIMEOUT":  "30",
	}
	return loadConfig(t, env, extra)
}

// umlProcesses lists running processes whose command line mentions dir (the kernel, its helpers).
func umlProcesses(dir string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir)) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

// TestBootEndToEnd boots the end-to-end pair in the ways people and CI do, and breaks it in the ways
// that must fail cleanly. The base image must come out of all of it unchanged.
func TestBootEndToEnd(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, _, _ := e2ePair(t)
	dist := filepath.Join(ws, "dist")
	image, _, _ := manifest.RootfsFiles(dist, "test")
	before, err := digest.File(image)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if after, _ := digest.File(image); after != before {
			t.Errorf("the base image changed: sha256 %s, was %s", after, before)
		}
		if left := umlProcesses(dist); len(left) > 0 {
			t.Errorf("processes left behind:\n%s", strings.Join(left, "\n"))
		}
	})

	t.Run("faults", func(t *testing.T) {
		cases := []struct {
			name   string
			extra  map[string]string
			cancel time.Duration
			record func(t *testing.T) // changes dist/ for the case and restores it
			want   []string
		}{
			{name: "kernel panic", extra: map[string]string{"SUML_BOOT_ARGS": "root=/dev/ubdz"}, want: []string{"kernel panic"}},
			{name: "never ready", extra: map[string]string{"SUML_BOOT_READY": "NEVER-PRINTED", "SUML_BOOT_TIMEOUT": "3"}, want: []string{"timed out after 3s", "NEVER-PRINTED"}},
			{name: "failed check", record: func(t *testing.T) {
				p := filepath.Join(dist, manifest.KernelRecordName)
				data, _ := os.ReadFile(p)
				os.WriteFile(p, bytes.Replace(data, []byte(`"version": "`), []byte(`"version": "9.9.9-not-`), 1), 0o644)
				t.Cleanup(func() { os.WriteFile(p, data, 0o644) })
			}, want: []string{"1 check(s) failed", "kernel release: got", "9.9.9-not-"}},
			{name: "cancelled during boot", cancel: 300 * time.Millisecond, want: []string{"cancelled"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if c.record != nil {
					c.record(t)
				}
				ctx := context.Background()
				if c.cancel > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, c.cancel)
					defer cancel()
				}
				start := time.Now()
				_, err := GuestTest(ctx, bootConfig(t, ws, c.extra), testLog(t))
				if err == nil {
					t.Fatal("mage test passed")
				}
				t.Logf("failed as it should, after %s: %v", time.Since(start).Round(time.Millisecond), firstLines(err.Error(), 3))
				for _, w := range c.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error does not say %q:\n%v", w, err)
					}
				}
				if !strings.Contains(err.Error(), "console") {
					t.Errorf("error carries no console: %v", err)
				}
				if left := umlProcesses(dist); len(left) > 0 {
					t.Errorf("processes left behind:\n%s", strings.Join(left, "\n"))
				}
			})
		}
	})

	t.Run("two guests share the image", func(t *testing.T) {
		cfg := bootConfig(t, ws, map[string]string{"SUML_BOOT_NET": "none"})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		cows := []string{filepath.Join(t.TempDir(), "a.cow"), filepath.Join(t.TempDir(), "b.cow")}
		for i := range cows {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g, err := prepareGuest(cfg, io.Discard)
				if err != nil {
					errs[i] = err
					return
				}
				g.opts.COW = cows[i]
				vm, err := uml.Start(context.Background(), g.opts)
				if err != nil {
					errs[i] = err
					return
				}
				defer vm.Stop()
				ctx := context.Background()
				if _, err := vm.Expect(ctx, "login:", 30*time.Second); err != nil {
					errs[i] = err
					return
				}
				if err := vm.LoginRoot(ctx, g.recipe.RootPassword, 30*time.Second); err != nil {
					errs[i] = err
					return
				}
				// Each guest writes its own mark; neither sees the other's.
				out, _, err := vm.Run(ctx, fmt.Sprintf("echo guest%d > /mark; cat /mark; ls /mark* | wc -l", i), 30*time.Second)
				if err == nil && out != fmt.Sprintf("guest%d\n1", i) {
					err = fmt.Errorf("guest %d sees %q", i, out)
				}
				t.Logf("guest %d (%s): wrote and read its own /mark, %s after start", i, cows[i], vm.Elapsed().Round(time.Millisecond))
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("guest %d: %v", i, err)
			}
			if fi, err := os.Stat(cows[i]); err != nil || fi.Size() == 0 {
				t.Errorf("copy-on-write file %d: %v", i, err)
			}
		}
	})

	t.Run("forwarded port", func(t *testing.T) {
		port := freeLocalPort(t)
		cfg := bootConfig(t, ws, map[string]string{"SUML_BOOT_NET": "user", "SUML_BOOT_FORWARD": fmt.Sprintf("%d:8080", port)})
		ctx := context.Background()
		vm := bootLoggedIn(t, cfg)
		// A server in the guest, the "network service in a sandbox".
		if _, status, err := vm.Run(ctx, "nc -l -p 8080 -e /bin/sh -c 'echo SUML-FORWARD-OK; uname -n' >/dev/null 2>&1 &", 10*time.Second); err != nil || status != 0 {
			t.Fatalf("starting the guest's server: status %d, %v", status, err)
		}
		var got []byte
		for try := 0; try < 20; try++ {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			got, _ = io.ReadAll(c)
			c.Close()
			if len(got) > 0 {
				break
			}
			time.Sleep(200 * time.Millisecond) // the server was not listening yet
		}
		if !strings.Contains(string(got), "SUML-FORWARD-OK\nsuml-test") {
			t.Fatalf("host 127.0.0.1:%d -> guest :8080 answered %q", port, got)
		}
	})

	// Settle waits for the kernel's word that the disks are written out: a guest that lowers its
	// console log level (as quiet does) still gives it, rather than costing its stop the timeout.
	t.Run("a quiet guest settles", func(t *testing.T) {
		vm := bootLoggedIn(t, bootConfig(t, ws, nil))
		if _, status, err := vm.Run(context.Background(), "echo 1 > /proc/sys/kernel/printk", 10*time.Second); err != nil || status != 0 {
			t.Fatalf("lowering the console log level: status %d, %v", status, err)
		}
		if err := vm.Settle(uml.SettleTimeout); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("host services", func(t *testing.T) {
		// Attacks from inside the guest, as its root, on services of the host: TCP and UDP on its
		// loopback (as the gateway address) and on all its addresses (through its own address). With
		// boot.host_access off each must fail; with it on the loopback's answer.
		own := attacktest.HostIPv4(t)
		loopTCP := tokenService(t, "tcp", "127.0.0.1:0")
		allTCP := tokenService(t, "tcp", "0.0.0.0:0")
		loopUDP := tokenService(t, "udp", "127.0.0.1:0")
		allUDP := tokenService(t, "udp", "0.0.0.0:0")
		gw := usernet.GatewayIP
		tcpCmd := func(host string, s *tokenListener) string {
			return fmt.Sprintf("nc -w 3 %s %d </dev/null 2>&1; true", host, s.port)
		}
		udpCmd := func(host string, s *tokenListener) string {
			// busybox's nc has no UDP; its tftp client sends a read request as a datagram.
			return fmt.Sprintf("busybox timeout 3 busybox tftp -g -r x -l /tmp/tftp.out %s %d 2>&1; true", host, s.port)
		}
		ctx := context.Background()
		for _, open := range []bool{false, true} {
			t.Run(fmt.Sprintf("host_access=%v", open), func(t *testing.T) {
				vm := bootLoggedIn(t, bootConfig(t, ws, map[string]string{"SUML_BOOT_NET": "user", "SUML_BOOT_HOST_ACCESS": fmt.Sprint(open)}))
				attempts := []struct {
					cmd       string
					s         *tokenListener
					reachable bool // with host access on
				}{
					{tcpCmd(gw, loopTCP), loopTCP, true},
					{tcpCmd(own, allTCP), allTCP, true},
					{udpCmd(gw, loopUDP), loopUDP, true},
					{udpCmd(own, allUDP), allUDP, true},
					// The guest's own view of 0.0.0.0 and 127.0.0.1 is itself; through the network,
					// only the gateway's address stands for the host.
					{tcpCmd("10.0.2.3", loopTCP), loopTCP, false},
				}
				for _, a := range attempts {
					a.s.reset()
					out, _, err := vm.Run(ctx, a.cmd, 20*time.Second)
					if err != nil {
						t.Fatalf("%s: %v", a.cmd, err)
					}
					reached := strings.Contains(out, a.s.token) || a.s.heard()
					if want := open && a.reachable; reached != want {
						t.Errorf("%s: reached the host service %v, want %v (output %q)", a.cmd, reached, want, out)
					}
				}
			})
		}
		// mage test checks the door too: closed here, open in the end-to-end pair's own run.
		var out strings.Builder
		if _, err := GuestTest(ctx, bootConfig(t, ws, map[string]string{"SUML_BOOT_NET": "user"}), &out); err != nil {
			t.Fatalf("mage test with the user network: %v\n%s", err, out.String())
		}
		if !strings.Contains(out.String(), "ok   the host's loopback is closed to the guest") {
			t.Errorf("mage test did not check the closed door:\n%s", out.String())
		}
	})

	t.Run("hostfs", func(t *testing.T) {
		// Attacks from inside the guest, as its root: the host's files are reachable through hostfs
		// only when a folder is shared, and then only that folder (patches/0001-hostfs-*.patch).
		home := t.TempDir()
		canary := attacktest.NewCanary(t, filepath.Join(home, "secret"), "id_ed25519")
		shared := filepath.Join(home, "shared")
		os.MkdirAll(filepath.Join(shared, "sub"), 0o755)
		os.WriteFile(filepath.Join(shared, "hello.txt"), []byte("from the host\n"), 0o644)
		os.Symlink("/", filepath.Join(shared, "root"))       // a link to the host's /
		os.Symlink("../secret", filepath.Join(shared, "up")) // a link climbing out of the share
		ctx := context.Background()
		type attempt struct {
			cmd    string
			ok     bool   // whether the command must succeed
			output string // what it must print when it succeeds
		}
		attack := func(t *testing.T, kernel string, extra map[string]string, attempts []attempt) {
			vm := bootLoggedInWith(t, bootConfig(t, ws, extra), kernel)
			for i, a := range attempts {
				out, status, err := vm.Run(ctx, fmt.Sprintf("mkdir -p /mnt/%d && %s", i, strings.ReplaceAll(a.cmd, "$M", fmt.Sprintf("/mnt/%d", i))), 10*time.Second)
				if err != nil {
					t.Fatalf("%s: %v", a.cmd, err)
				}
				if (status == 0) != a.ok || a.ok && out != a.output {
					t.Errorf("%s: status %d, output %q; want success %v", a.cmd, status, out, a.ok)
				}
				if strings.Contains(out, strings.TrimSpace(string(canary.Data))) {
					t.Errorf("%s: the guest read the host's file: %q", a.cmd, out)
				}
			}
			canary.Check(t)
		}
		t.Run("closed unless a folder is shared", func(t *testing.T) {
			attack(t, "", map[string]string{"SUML_BOOT_NET": "none"}, []attempt{
				{cmd: "mount -t hostfs none $M"},
				{cmd: "mount -t hostfs none $M -o " + filepath.Dir(canary.Path)},
				{cmd: "mount -t hostfs hostfs $M -o /"},
			})
		})
		t.Run("the shared folder and nothing else", func(t *testing.T) {
			attack(t, "", map[string]string{"SUML_BOOT_NET": "none", "SUML_BOOT_HOSTFS": shared}, []attempt{
				{cmd: "mount -t hostfs none $M && cat $M/hello.txt", ok: true, output: "from the host"},
				{cmd: "mount -t hostfs none $M -o ../../.. && ls $M"},
				{cmd: "mount -t hostfs none $M -o sub/../../secret && ls $M"},
				{cmd: "mount -t hostfs none $M -o /../secret && ls $M"},
				{cmd: "mount -t hostfs none $M -o root && ls $M"},
				{cmd: "mount -t hostfs none $M -o up && ls $M"},
				// Links inside the share are the guest's to resolve, in its own file system.
				{cmd: "mount -t hostfs none $M && cat $M/root" + canary.Path},
				{cmd: "mount -t hostfs none $M && cat $M/up/id_ed25519"},
				{cmd: "mount -t hostfs none $M && echo pwned > $M/up/id_ed25519"},
				{cmd: "mount -t hostfs none $M && echo pwned > $M/root" + canary.Path},
			})
		})
		// The second layer alone: a kernel whose hostfs mounts any host path, under the sandbox.
		t.Run("the sandbox holds without the hostfs patch", func(t *testing.T) {
			kernel := attackerKernel
			if k := os.Getenv("SUML_E2E_KERNEL_UNPATCHED"); k != "" {
				kernel = k
			}
			if kernel == "" {
				t.Fatal("no kernel without the hostfs patch: run the whole package (the kernel end-to-end test builds one), or set SUML_E2E_KERNEL_UNPATCHED")
			}
			for _, share := range []string{"", shared} {
				attack(t, kernel, map[string]string{"SUML_BOOT_NET": "none", "SUML_BOOT_HOSTFS": share, "SUML_BOOT_SANDBOX": "strict"}, []attempt{
					{cmd: "mount -t hostfs none $M -o " + filepath.Dir(canary.Path) + " && cat $M/id_ed25519"},
					{cmd: "mount -t hostfs none $M -o " + filepath.Dir(canary.Path) + " && echo pwned > $M/id_ed25519"},
					{cmd: "mount -t hostfs none $M && ls $M" + filepath.Dir(filepath.Dir(canary.Path))},
					{cmd: "mount -t hostfs none $M -o ../secret && cat $M/id_ed25519"},
				})
			}
			attack(t, kernel, map[string]string{"SUML_BOOT_NET": "none", "SUML_BOOT_HOSTFS": shared, "SUML_BOOT_SANDBOX": "strict"}, []attempt{
				{cmd: "mount -t hostfs none $M && cat $M/hello.txt", ok: true, output: "from the host"},
			})
		})
	})

	t.Run("interactive boot restores the terminal after a panic", func(t *testing.T) {
		if _, err := exec.LookPath("script"); err != nil {
			t.Fatal("script(1) missing: apt-get install bsdutils")
		}
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		// script(1) gives the boot a real terminal; after it, stty shows that terminal's state.
		cmd := exec.Command("script", "-qec", self+"; echo boot-exit=$?; stty -a", "/dev/null")
		cmd.Env = append(os.Environ(), childSwitch+"=boot", "SUML_TEST_ROOT="+repoRoot(t),
			"SUML_RECIPES="+filepath.Join(ws, "recipes"), "SUML_ROOTFS_RECIPE=test", "SUML_DIST="+dist,
			"SUML_CACHE="+t.TempDir(), "SUML_BOOT_ARGS=root=/dev/ubdz", "SUML_BOOT_NET=none")
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		text := string(out)
		_, after, _ := strings.Cut(text, "boot-exit")
		t.Logf("terminal after the boot: boot-exit%s", firstLines(after, 4))
		for _, want := range []string{"Kernel panic", "boot-exit=1", " icanon", " echo "} {
			if !strings.Contains(text, want) {
				t.Errorf("the session lacks %q:\n%s", want, text)
			}
		}
	})

	t.Run("dist and verify", func(t *testing.T) {
		cfg := bootConfig(t, ws, nil)
		res, err := Dist(context.Background(), cfg, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		m, err := manifest.Verify(res.Dir)
		if err != nil {
			t.Fatal(err)
		}
		// The tag is the version of the kernel built (from Debian's linux-source, whose point release
		// moves), then the revision.
		var kernel manifest.KernelRecord
		if err := files.ReadJSON(filepath.Join(cfg.Paths.Dist, manifest.KernelRecordName), &kernel); err != nil {
			t.Fatal(err)
		}
		if len(m.Rootfs) != 1 || m.Rootfs[0].Configure == nil || m.Tag != "v"+kernel.Version+"-1" {
			t.Errorf("manifest: tag %s (kernel %s), %d root filesystems", m.Tag, kernel.Version, len(m.Rootfs))
		}
		cmd := exec.Command("sh", "-c", "sha256sum -c SHA256SUMS && tar -tJvf simple-uml-linux-*.tar.xz")
		cmd.Dir = res.Dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range []string{" 0/0 ", " linux\n", " COPYING\n", " .config\n", " System.map\n"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("kernel tarball listing lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("fetch a published release and test it", func(t *testing.T) {
		srv := releaseServer(t, filepath.Join(dist, releasedir.Name), "", nil)
		fresh := bootConfig(t, ws, map[string]string{"SUML_DIST": filepath.Join(t.TempDir(), "dist")})
		env := map[string]string{"GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": srv.URL + "/api/v3"}
		if _, err := FetchRelease(context.Background(), fresh, func(k string) string { return env[k] }, "", testLog(t)); err != nil {
			t.Fatal(err)
		}
		report, err := GuestTest(context.Background(), fresh, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the fetched pair booted to ready in %s and passed %d checks", report.Ready.Round(time.Millisecond), len(report.Checks))
	})

	t.Run("debug under gdb", func(t *testing.T) {
		cfg := bootConfig(t, ws, map[string]string{"SUML_BOOT_ARGS": "init=/usr/libexec/suml-check", "SUML_BOOT_NET": "none"})
		devnull, _ := os.Open(os.DevNull)
		defer devnull.Close()
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err := Debug(ctx, cfg, devnull, &out, testLog(t), "-batch", "-ex", "break start_kernel", "-ex", "run", "-ex", "bt 1", "-ex", "continue")
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		// The lean profile's kernel has symbols and no debug information: gdb stops at the function,
		// without its source line (TestReproEndToEnd lists the default profile's).
		if !regexp.MustCompile(`Breakpoint 1, (0x[0-9a-f]+ in )?start_kernel`).MatchString(out.String()) || !strings.Contains(out.String(), "SUML-CHECK END") {
			t.Errorf("gdb session lacks the stop at start_kernel or the guest's end:\n%s", out.String())
		}
		if kc, _ := kconf.ParseFile(filepath.Join(cfg.Paths.Dist, kernel.ConfigName)); kc.Get("CONFIG_DEBUG_INFO") == "y" && !strings.Contains(out.String(), "init/main.c") {
			t.Errorf("gdb session lacks start_kernel's source file, in a kernel with debug information:\n%s", out.String())
		}
	})
}

// bootLoggedIn boots the pair with cfg and logs in as root on the console; the test's end stops it.
func bootLoggedIn(t testing.TB, cfg config.Config) *uml.Guest {
	t.Helper()
	return bootLoggedInWith(t, cfg, "")
}

// bootLoggedInWith is bootLoggedIn with another kernel than dist's, when kernel is not empty.
func bootLoggedInWith(t testing.TB, cfg config.Config, kernel string) *uml.Guest {
	t.Helper()
	g, err := prepareGuest(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if kernel != "" {
		g.opts.Kernel = kernel
	}
	t.Cleanup(g.cleanup)
	ctx := context.Background()
	vm, err := uml.Start(ctx, g.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Stop)
	if _, err := vm.Expect(ctx, "login:", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := vm.LoginRoot(ctx, g.recipe.RootPassword, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return vm
}

func freeLocalPort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}

// tokenListener is a host service an attack tries to reach: over TCP it answers with its token, over
// UDP it notes any datagram.
type tokenListener struct {
	port  int
	token string
	mu    sync.Mutex
	got   bool
}

func (l *tokenListener) heard() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got
}

func (l *tokenListener) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = false
}

func tokenService(t testing.TB, network, addr string) *tokenListener {
	l := &tokenListener{token: "SUML-HOST-SERVICE-" + uml.RandomHex(8)}
	note := func() {
		l.mu.Lock()
		l.got = true
		l.mu.Unlock()
	}
	if network == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		l.port = pc.LocalAddr().(*net.UDPAddr).Port
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				note()
			}
		}()
		return l
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	l.port = ln.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			note()
			fmt.Fprintln(c, l.token)
			c.Close()
		}
	}()
	return l
}
