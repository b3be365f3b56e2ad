package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// standInGuest is a stand-in for dist/linux booting void-minimal's image: a bash script that talks
// on the console as the guest does (a login prompt, a password, a root shell) and answers the
// commands of mage test's checks as the real guest answers them, from functions, so that the
// orchestration of `mage test` (ready, login, checks, reports, power-off, verdict) runs without a
// kernel. release is what `uname -r` says.
const standInGuest = `#!/bin/bash
echo "Void 6.x (none) (console)"
echo "void login: "
read -r user
echo "Password: "
read -r pw
if [ "$pw" != voidlinux ]; then echo "Login incorrect"; exit 1; fi
uname() { echo %s; }
awk() { echo ext4; }
touch() { :; }
rm() { :; }
xbps-query() { for p in %s; do echo "ii $p a package"; done; }
xbps-pkgdb() { :; }
insmod() { echo "insmod: ERROR: could not insert module: Function not implemented"; }
[() { if builtin [ "$1 $2" = "-e /proc/modules" ]; then return 1; fi; builtin [ "$@"; }
hostname() { :; }
ip() { :; }
poweroff() { echo "reboot: System halted"; exit 0; }
# What the guest writes in its own /tmp and /proc/sys stays in a folder of the stand-in's.
own=$(mktemp -d)
trap 'command rm -rf "$own"' EXIT
mkdir -p "$own/tmp" "$own/proc/sys/net/ipv4"
printf '# '
while IFS= read -r line; do
	line=${line//\/tmp\//$own/tmp/}
	line=${line//\/proc\/sys\//$own/proc/sys/}
	eval "$line"
	printf '# '
done
`

// guestDist is a dist/ with void-minimal's records, a stand-in image and the stand-in guest as its
// kernel, whose uname -r says release.
func guestDist(t *testing.T, release string) map[string]string {
	t.Helper()
	dist := t.TempDir()
	fakeKernelDist(t, dist)
	rec := manifest.RootfsRecord{Recipe: "void-minimal", Arch: "x86_64", Packages: []manifest.PackageRecord{
		{Name: "base-files", Pkgver: "base-files-0.143_1"}, {Name: "busybox", Pkgver: "busybox-1.36_1"}}}
	if err := files.WriteJSON(filepath.Join(dist, "void-minimal.json"), rec); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dist, "void-minimal.ext4"), make([]byte, 4096), 0o644)
	script := fmt.Sprintf(standInGuest, release, "base-files-0.143_1 busybox-1.36_1")
	linux := filepath.Join(dist, kernel.LinuxName)
	os.WriteFile(linux, []byte(script), 0o755)
	os.Chmod(linux, 0o755) // fakeKernelDist wrote it as a plain file
	return map[string]string{"HOME": t.TempDir(), "SUML_DIST": dist, "SUML_CACHE": t.TempDir(), "SUML_BOOT_SANDBOX": "off",
		"SUML_BOOT_RECIPE": "void-minimal", "SUML_BOOT_TIMEOUT": "10"}
}

// TestGuestTestVerdicts runs mage test's orchestration against the stand-in guest: all checks
// passing passes and writes the reports; a wrong kernel release fails naming the check and the
// console log; a refused root password fails naming the recipe's setting.
func TestGuestTestVerdicts(t *testing.T) {
	tests := []struct {
		name, release string
		env           map[string]string
		want          []string // in the error; none for a pass
	}{
		{"passes", "6.12.117", map[string]string{"SUML_TEST_SCRIPTS": writeTestScript(t, "echo 'TAP version 13'; echo 1..2; echo 'ok 1 - one'; echo 'ok 2 - two'")}, nil},
		{"a script fails", "6.12.117", map[string]string{"SUML_TEST_SCRIPTS": writeTestScript(t, "echo 'TAP version 13'; echo 1..1; echo 'not ok 1 - one'")}, []string{"1 check(s) failed", "script"}},
		{"another kernel", "6.1.0-host", nil, []string{"1 check(s) failed", "kernel release", "full console:"}},
		{"a wrong password", "6.12.117", map[string]string{"SUML_RECIPES": recipesWithPassword(t, "not-it")}, []string{"root_password was refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := guestDist(t, tt.release)
			for k, v := range tt.env {
				env[k] = v
			}
			cfg := loadConfig(t, env, nil)
			var out bytes.Buffer
			report, err := GuestTest(context.Background(), cfg, &out)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("%v\n%s", err, out.String())
				}
				if len(report.Checks) != 5 || len(report.Failed()) != 0 || report.Version != "6.12.117" || len(report.Scripts) != 1 || len(report.Scripts[0].Subtests) != 2 {
					t.Errorf("report %+v", report)
				}
				for _, f := range []string{"void-minimal.json", "void-minimal.junit.xml"} {
					if _, err := os.Stat(filepath.Join(cfg.Paths.Dist, "test-reports", f)); err != nil {
						t.Errorf("report %s: %v", f, err)
					}
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err %v, want %q", err, w)
				}
			}
		})
	}
}

// recipesWithPassword is a recipes folder whose void-minimal sets another root password.
func recipesWithPassword(t *testing.T, password string) string {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "rootfs-recipes", "void-minimal.toml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "void-minimal.toml"), bytes.Replace(data, []byte(`root_password = "voidlinux"`), []byte(`root_password = "`+password+`"`), 1), 0o644)
	return dir
}

func writeTestScript(t *testing.T, body string) string {
	path := filepath.Join(t.TempDir(), "checks.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBootOnStandIn: mage boot puts the console on the terminal (here a pipe), says what it boots
// and where writes go, and ends with the guest's power-off or with Ctrl-C, leaving no throwaway COW
// folder.
func TestBootOnStandIn(t *testing.T) {
	for _, tt := range []struct {
		name   string
		typed  string
		cancel bool
	}{
		{"power-off", "root\nvoidlinux\npoweroff\n", false},
		{"Ctrl-C", "root\nvoidlinux\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadConfig(t, guestDist(t, "6.12.117"), nil)
			in, keys, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer keys.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var screen, banner syncBuffer
			done := make(chan error, 1)
			go func() { done <- Boot(ctx, cfg, in, &screen, &banner) }()
			keys.WriteString(tt.typed)
			if tt.cancel {
				waitFor(10*time.Second, func() bool { return strings.Contains(screen.String(), "# ") })
				cancel()
			}
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("boot did not end:\n%s", screen.String())
			}
			if tt.cancel != (err != nil) {
				t.Errorf("boot: %v\n%s", err, screen.String())
			}
			if !tt.cancel && !strings.Contains(screen.String(), "reboot: System halted") {
				t.Errorf("the console did not reach the terminal:\n%s", screen.String())
			}
			if !strings.Contains(banner.String(), "throwaway copy-on-write") || !strings.Contains(banner.String(), "network: none") {
				t.Errorf("banner:\n%s", banner.String())
			}
			if left, _ := filepath.Glob(filepath.Join(cfg.Paths.Cache, "run", "*-cow-*")); len(left) > 0 {
				t.Errorf("throwaway COW folders left: %v", left)
			}
		})
	}
}
