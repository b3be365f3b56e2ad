package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/rootfs"
)

// The real Void Linux base system of ../shared/fixtures/void-2021: 98 packages of September 2021 as a
// signed repository (its README says where they come from and how they differ from Void's).
const (
	voidRecipe      = "void-2021" // testdata/void-2021.toml
	voidPackages    = 98
	voidFixtureRepo = "../../../shared/fixtures/void-2021/repo"
)

// voidSystemState is the Void system the tests below share: built once per test binary.
var voidSystemState struct {
	ws, sshKey string
	out        string
}

// voidSystem assembles the fixture's base system with the end-to-end kernel, as `mage rootfs` does:
// signed repository, INSTALL scripts in a configure boot, the image and tarball in dist/. The recipe
// is the fixture README's, with an ssh key of the test's for root.
func voidSystem(t testing.TB) (ws, sshKey, out string) {
	t.Helper()
	if voidSystemState.ws != "" {
		return voidSystemState.ws, voidSystemState.sshKey, voidSystemState.out
	}
	kernel := e2eKernel(t)
	repo, err := filepath.Abs(voidFixtureRepo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(repo); err != nil {
		t.Fatalf("the Void fixture: %v", err)
	}
	if ws, err = os.MkdirTemp("", "suml-void-e2e-"); err != nil {
		t.Fatal(err)
	}
	e2eCleanup = append(e2eCleanup, func() { os.RemoveAll(ws) })
	sshKey = filepath.Join(ws, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "suml-void-e2e", "-f", sshKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s (apt-get install openssh-client)", err, out)
	}
	pub, err := os.ReadFile(sshKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	template, err := os.ReadFile(filepath.Join("testdata", voidRecipe+".toml"))
	if err != nil {
		t.Fatal(err)
	}
	recipe := strings.NewReplacer("@FIXTURE@", repo, "@AUTHORIZED_KEYS@", fmt.Sprintf("[%q]", strings.TrimSpace(string(pub)))).Replace(string(template))
	os.MkdirAll(filepath.Join(ws, "recipes"), 0o755)
	if err := os.WriteFile(filepath.Join(ws, "recipes", voidRecipe+".toml"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	copyKernel(t, filepath.Dir(kernel), filepath.Join(ws, "dist"))
	cfg := voidConfig(t, ws, nil)
	var log bytes.Buffer
	start := time.Now()
	_, err = Rootfs(context.Background(), cfg, voidRecipe, io.MultiWriter(&log, testLog(t)))
	t.Logf("mage rootfs %s: %s", voidRecipe, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("rootfs %s: %v\n%s", voidRecipe, err, log.String())
	}
	voidSystemState.ws, voidSystemState.sshKey, voidSystemState.out = ws, sshKey, log.String()
	return ws, sshKey, log.String()
}

// voidConfig is a user's configuration for the Void system's dist/, with extra SUML_* settings.
func voidConfig(t testing.TB, ws string, extra map[string]string) config.Config {
	t.Helper()
	env := map[string]string{
		"SUML_RECIPES":       filepath.Join(ws, "recipes"),
		"SUML_ROOTFS_RECIPE": voidRecipe,
		"SUML_ROOTFS_KERNEL": filepath.Join(ws, "dist", kernel.LinuxName),
		"SUML_DIST":          filepath.Join(ws, "dist"),
		"SUML_CACHE":         filepath.Join(ws, "cache"),
		"SUML_BOOT_TIMEOUT":  "60",
	}
	return loadConfig(t, env, extra)
}

// TestVoidSystem builds the real Void base system and uses it as a Void user would: what the
// packages' scripts set (file capabilities, users, shadow files, the locale) is in the image and the
// tarball, nothing one instance owns is; booted, its runit services run, root logs in on the console
// and over ssh through a forwarded port, xbps lists, checks and installs packages, and an ordinary
// user pings through ping's file capability. Then `mage test` passes on it.
func TestVoidSystem(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, sshKey, out := voidSystem(t)
	for _, want := range []string{"configure boot done", "slowest scripts: "} {
		if !strings.Contains(out, want) {
			t.Errorf("mage rootfs did not report %q:\n%s", want, out)
		}
	}
	configureLog, err := os.ReadFile(filepath.Join(ws, "cache", "rootfs", voidRecipe+"-configure.log"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(configureLog, []byte("Failed to set capabilities")) || bytes.Contains(configureLog, []byte("Operation not supported")) {
		t.Errorf("a script could not set an extended attribute in the configure boot:\n%s", configureLog)
	}
	for _, s := range rootfs.ScriptTimes(string(configureLog)) {
		if s.Took > 500*time.Millisecond {
			t.Logf("configure boot: %s %s took %s", s.Pkgver, s.Action, s.Took.Round(10*time.Millisecond))
		}
	}
	checkVoidTarball(t, filepath.Join(ws, "dist", voidRecipe+".tar.zst"))

	t.Run("booted", func(t *testing.T) {
		share := t.TempDir()
		writeLocalRepository(t, voidConfig(t, ws, nil), filepath.Join(share, "repo"))
		port := freeLocalPort(t)
		cfg := voidConfig(t, ws, map[string]string{
			"SUML_BOOT_NET": "user", "SUML_BOOT_FORWARD": fmt.Sprintf("%d:22", port), "SUML_BOOT_HOSTFS": share,
		})
		vm := bootLoggedIn(t, cfg)
		t.Logf("login prompt and root logged in %s after the kernel started", vm.Elapsed().Round(time.Millisecond))
		ctx := context.Background()
		for _, c := range voidChecks {
			got, status, err := vm.Run(ctx, c.cmd, 60*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if status != 0 || !c.ok(got) {
				t.Errorf("%s: %q exited %d:\n%s", c.name, c.cmd, status, got)
			}
		}
		sshOut, err := exec.Command("ssh", "-i", sshKey, "-p", strconv.Itoa(port), "-o", "BatchMode=yes",
			"-o", "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile="+filepath.Join(t.TempDir(), "known_hosts"),
			"-o", "ConnectTimeout=20", "root@127.0.0.1", "cat /etc/hostname; xbps-query -l | wc -l").CombinedOutput()
		if err != nil || !strings.Contains(string(sshOut), "void-uml\n99") {
			t.Errorf("ssh through the forwarded port: %v\n%s", err, sshOut)
		}
		if err := vm.Send("poweroff\n"); err != nil {
			t.Fatal(err)
		}
		if err := vm.Wait(60 * time.Second); err != nil {
			t.Fatalf("poweroff: %v", err)
		}
		if !strings.Contains(vm.Console(), "runit: enter stage: /etc/runit/3") {
			t.Errorf("poweroff did not go through runit's stage 3:\n%s", lastLines(vm.Console(), 30))
		}
	})

	t.Run("an instance keeps its ssh host key", func(t *testing.T) {
		port := freeLocalPort(t)
		cfg := voidConfig(t, ws, map[string]string{
			"SUML_BOOT_NET": "user", "SUML_BOOT_FORWARD": fmt.Sprintf("%d:22", port), "SUML_STATE": t.TempDir(),
		})
		knownHosts := filepath.Join(t.TempDir(), "known_hosts")
		ssh := func(checking string) (string, error) { // sshd starts a moment after the login prompt
			var out []byte
			var err error
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
				out, err = exec.Command("ssh", "-i", sshKey, "-p", strconv.Itoa(port), "-o", "BatchMode=yes",
					"-o", "StrictHostKeyChecking="+checking, "-o", "UserKnownHostsFile="+knownHosts,
					"-o", "ConnectTimeout=20", "root@127.0.0.1", "cat /etc/hostname").CombinedOutput()
				if err == nil || bytes.Contains(out, []byte("HOST IDENTIFICATION HAS CHANGED")) {
					break
				}
			}
			return string(out), err
		}
		ctx := context.Background()
		var log bytes.Buffer
		if err := Up(ctx, cfg, "sshd", "", &log); err != nil {
			t.Fatalf("up: %v\n%s", err, log.String())
		}
		t.Cleanup(func() { Remove(cfg, "sshd", &log) })
		if out, err := ssh("accept-new"); err != nil {
			t.Fatalf("ssh to the instance: %v\n%s", err, out)
		}
		if err := StopInstance(cfg, "sshd", &log); err != nil {
			t.Fatal(err)
		}
		if err := Up(ctx, cfg, "sshd", "", &log); err != nil {
			t.Fatalf("up again: %v\n%s", err, log.String())
		}
		if out, err := ssh("yes"); err != nil {
			var logs bytes.Buffer
			Logs(ctx, cfg, "sshd", false, &logs)
			t.Errorf("ssh after stop and up, with the host key known: %v\n%s\nthe instance's console:\n%s", err, out, logs.String())
		}
		// reset makes sshd make new keys: the check above would see them.
		if err := Reset(ctx, cfg, "sshd", &log); err != nil {
			t.Fatal(err)
		}
		if out, err := ssh("yes"); err == nil || !strings.Contains(out, "HOST IDENTIFICATION HAS CHANGED") {
			t.Errorf("ssh after reset: %v, want a changed host key\n%s", err, out)
		}
	})

	t.Run("mage test", func(t *testing.T) {
		var log bytes.Buffer
		start := time.Now()
		report, err := GuestTest(context.Background(), voidConfig(t, ws, nil), io.MultiWriter(&log, testLog(t)))
		t.Logf("mage test: %s, ready in %s", time.Since(start).Round(time.Millisecond), report.Ready.Round(time.Millisecond))
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		if !strings.Contains(log.String(), fmt.Sprintf("xbps database: %d packages (xbps-query)", voidPackages)) {
			t.Errorf("mage test did not check the database with the image's own xbps:\n%s", log.String())
		}
	})
}

// voidChecks are run as root on the console of the booted Void system, in order.
var voidChecks = []struct {
	name, cmd string
	ok        func(string) bool
}{
	{"runit runs the services", "sv status /var/service/*", func(s string) bool {
		return strings.Contains(s, "run: /var/service/sshd:") && strings.Contains(s, "run: /var/service/udevd:") &&
			strings.Contains(s, "run: /var/service/agetty-tty0:") && !strings.Contains(s, "down:") && !strings.Contains(s, "fail:")
	}},
	{"xbps lists the packages", "xbps-query -l | wc -l", equal(strconv.Itoa(voidPackages))},
	{"xbps finds the database sound", "xbps-pkgdb -a && echo sound", equal("sound")},
	{"root's password is a SHA-512 crypt", "grep '^root:' /etc/shadow | cut -d: -f2 | cut -c1-3", equal("$6$")},
	{"the shadow files agree with passwd and group", "pwck -r >/dev/null && grpck -r >/dev/null && echo consistent", equal("consistent")},
	{"the users the scripts made exist", "id -u _uuidd >/dev/null && id -u _dhcpcd >/dev/null && echo present", equal("present")},
	{"the locale was generated", "locale -a", func(s string) bool { return strings.Contains(s, "en_US.utf8") }},
	{"ping keeps its file capability", "getcap /usr/bin/iputils-ping", func(s string) bool { return strings.Contains(s, "cap_net_raw") }},
	{"unprivileged ICMP sockets are off, so ping needs it", "cat /proc/sys/net/ipv4/ping_group_range", equal("1\t0")},
	// -4: iputils otherwise also tries an IPv6 socket, which this kernel has not.
	{"an ordinary user pings", "useradd -m suml && su suml -c 'ping -4 -c 1 -W 3 127.0.0.1 >/dev/null && echo pinged'", equal("pinged")},
	{"a copy without the capability may not", "cp /usr/bin/iputils-ping /home/suml/ping && su suml -c '/home/suml/ping -4 -c 1 -W 3 127.0.0.1 2>&1'; true",
		func(s string) bool { return strings.Contains(s, "Operation not permitted") }},
	{"sshd made its host keys at its first start", "test -s /etc/ssh/ssh_host_ed25519_key && echo made", equal("made")},
	{"xbps installs from a local repository", "mount -t hostfs none /mnt && xbps-install -y -R /mnt/repo suml-hello >/dev/null && suml-hello",
		equal("hello from a local repository")},
	{"and the database stays sound", "xbps-pkgdb -a && xbps-query -l | wc -l", equal(strconv.Itoa(voidPackages + 1))},
}

func equal(want string) func(string) bool {
	return func(s string) bool { return strings.TrimSpace(s) == want }
}

// writeLocalRepository makes an unsigned local repository of one package of the user's own with
// `mage pkg` and `mage repo` (xbps checks only the sha256 of a local repository's packages).
func writeLocalRepository(t *testing.T, cfg config.Config, dir string) {
	t.Helper()
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "payload", "usr", "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "payload", "usr", "bin", "suml-hello"), []byte("#!/bin/sh\necho hello from a local repository\n"), 0o755)
	template := `name = "suml-hello"
version = "1.0"
revision = 1
arch = "noarch"
short_desc = "a package of the test's own"
license = "Public Domain"
payload = "payload"
date = 2026-01-01T00:00:00Z
`
	os.WriteFile(filepath.Join(src, "suml-hello.toml"), []byte(template), 0o644)
	ctx := context.Background()
	if _, err := Pkg(ctx, cfg, func(string) string { return "" }, PkgRequest{Template: filepath.Join(src, "suml-hello.toml"), Out: dir}, testLog(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := Repo(ctx, cfg, RepoRequest{Dir: dir, Arch: "x86_64"}, testLog(t)); err != nil {
		t.Fatal(err)
	}
}

// checkVoidTarball reads the release tarball: ping's file capability as GNU tar's --xattrs record,
// and none of the files that belong to one instance.
func checkVoidTarball(t *testing.T, path string) {
	t.Helper()
	names, entries := readRootfsTarball(t, path)
	for _, name := range names {
		if rootfs.PerInstance(strings.TrimPrefix(name, ".")) {
			t.Errorf("the tarball carries %s, which belongs to one instance", name)
		}
	}
	if ping, ok := entries["./usr/bin/iputils-ping"]; !ok || ping.hdr.PAXRecords["SCHILY.xattr.security.capability"] == "" {
		t.Error("the tarball's ping has no security.capability record")
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestVoidLabs runs the labs the project ships (labs/*.toml, which ping and ssh between guests) on
// the Void system, as `mage labTest <name>` does.
func TestVoidLabs(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, _, _ := voidSystem(t)
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "labs", "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no labs in labs/: %v", err)
	}
	cfg := voidConfig(t, ws, map[string]string{"SUML_LABS": filepath.Join(repoRoot(t), "labs")})
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".toml")
		t.Run(name, func(t *testing.T) {
			var log bytes.Buffer
			start := time.Now()
			report, err := LabTest(context.Background(), cfg, name, io.MultiWriter(&log, testLog(t)))
			t.Logf("labTest %s: %s, guests up in %s", name, time.Since(start).Round(time.Millisecond), report.Ready.Round(time.Millisecond))
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			if len(report.Checks) == 0 {
				t.Fatalf("lab %s ran no checks", name)
			}
		})
	}
}
