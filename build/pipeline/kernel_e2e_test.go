package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/kconf"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/source"
	"github.com/simple-uml/simple-uml/build/uml"
)

// The end-to-end test builds a real kernel (about four minutes on two cores). It runs when SUML_E2E=1,
// which .ci/run sets; then a missing prerequisite fails the test instead of skipping it.
const e2eSwitch = "SUML_E2E"

// Debian's linux-source-6.12 package: a real Linux source tarball, served as if by kernel.org.
const debianTarball = "/usr/src/linux-source-6.12.tar.xz"

func requireE2E(t testing.TB) {
	t.Helper()
	if os.Getenv(e2eSwitch) != "1" {
		t.Skipf("set %s=1 to build and boot a real kernel (about 5 minutes)", e2eSwitch)
	}
	for _, need := range []string{debianTarball, "/bin/busybox"} {
		if _, err := os.Stat(need); err != nil {
			t.Fatalf("%s: %v (apt-get install linux-source-6.12 busybox-static)", need, err)
		}
	}
	if _, err := host.LookPath("mke2fs"); err != nil {
		t.Fatal("mke2fs missing: apt-get install e2fsprogs")
	}
	if _, err := host.LookPath("gdb"); err != nil {
		t.Fatal("gdb missing: apt-get install gdb")
	}
}

// tarballVersion reads the version from the Makefile inside a kernel tarball.
func tarballVersion(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	xr, err := xz.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(xr)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("no top-level Makefile in %s: %v", path, err)
		}
		if parts := strings.Split(hdr.Name, "/"); len(parts) == 2 && parts[1] == "Makefile" {
			v, err := source.MakefileVersion(tr)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
}

// debianMirror is a loopback kernel.org publishing Debian's kernel source tarball under its version,
// signed; it returns the mirror and the version.
func debianMirror(t testing.TB) (*mirror, string) {
	t.Helper()
	version := tarballVersion(t, debianTarball)
	tarball, err := os.ReadFile(debianTarball)
	if err != nil {
		t.Fatal(err)
	}
	m := newMirror(t)
	m.publish(t, version, tarball, m.signer, nil)
	return m, version
}

// bootImage makes a tiny ext4 root filesystem: busybox-static and an init script that prints a marker
// with the running kernel's release, its root filesystem and what became of a hostfs mount without
// hostfs= (refused by patches/'s hostfs patch, which says so, or mounted), then powers off.
func bootImage(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	tree := filepath.Join(root, "tree")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "mnt"} {
		os.MkdirAll(filepath.Join(tree, d), 0o755)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tree, "bin", "busybox"), bb, 0o755)
	initScript := `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
if /bin/busybox mount -t hostfs none /mnt 2>/dev/null; then hostfs=mounted
elif /bin/busybox dmesg | /bin/busybox grep -q "hostfs: no host folder is shared"; then hostfs=refused-by-patch
else hostfs=refused; fi
echo "SUML-READY release=$(/bin/busybox uname -r) root=$(/bin/busybox awk '$2=="/"{print $3}' /proc/mounts | /bin/busybox tail -n1) hostfs=$hostfs"
/bin/busybox poweroff -f
`
	os.WriteFile(filepath.Join(tree, "init"), []byte(initScript), 0o755)
	img := filepath.Join(root, "rootfs.img")
	out, err := exec.Command("mke2fs", "-q", "-t", "ext4", "-d", tree, img, "16M").CombinedOutput()
	if err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	return img
}

// e2eKernelSettings are the settings of the kernel the end-to-end tests share (they boot it, and the
// distcc, shared-cache and series tests compare their builds with it or reuse it): the repository's
// patches/ and kconfig/, in the lean profile, which those boot, KUnit and lab tests then hold to its
// promise. (The reproducibility test builds the default profile, twice.)
func e2eKernelSettings() map[string]string {
	return map[string]string{"SUML_KERNEL_PROFILE": "lean"}
}

// withRepoFragments is a copy of the repository's kconfig/ (its profiles too) with more fragments.
func withRepoFragments(t testing.TB, more map[string]string) string {
	t.Helper()
	dir := writeTree(t, more)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repoRoot(t), "kconfig"))); err != nil {
		t.Fatal(err)
	}
	return dir
}

// withSettings is settings with more added.
func withSettings(settings map[string]string, more map[string]string) map[string]string {
	out := maps.Clone(settings)
	maps.Copy(out, more)
	return out
}

func TestKernelEndToEnd(t *testing.T) {
	requireE2E(t)
	m, version := debianMirror(t)
	settings := e2eKernelSettings()
	cfg := m.testConfig(t, version, settings)
	ctx := context.Background()

	res, err := Kernel(ctx, cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	want := version
	if res.UpToDate || res.Record.Version != want {
		t.Fatalf("record: version %q (up to date %v), want %q built", res.Record.Version, res.UpToDate, want)
	}
	for _, name := range []string{kernel.LinuxName, kernel.ConfigName, kernel.SystemMapName, manifest.KernelRecordName, kernel.DebugName} {
		if _, err := os.Stat(filepath.Join(cfg.Paths.Dist, name)); err != nil {
			t.Errorf("dist/%s: %v", name, err)
		}
	}
	final, err := kconf.ParseFile(filepath.Join(cfg.Paths.Dist, kernel.ConfigName))
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []string{"CONFIG_BLK_DEV_UBD", "CONFIG_EXT4_FS", "CONFIG_HOSTFS", "CONFIG_UML_NET_VECTOR", "CONFIG_IP_PNP", "CONFIG_DEVTMPFS_MOUNT", "CONFIG_EXT4_FS_SECURITY", "CONFIG_EXT4_FS_POSIX_ACL"} {
		if final.Get(opt) != "y" {
			t.Errorf("dist/%s: %s=%s, want y", kernel.ConfigName, opt, final.Get(opt))
		}
	}

	boot, err := uml.RunUntilExit(ctx, uml.Options{
		Kernel: filepath.Join(cfg.Paths.Dist, kernel.LinuxName), Image: bootImage(t), Init: "/init",
		Timeout: 60 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(boot.Console, "SUML-READY release="+want+" root=ext4 hostfs=refused-by-patch") {
		t.Fatalf("marker with release %s on ext4, hostfs refused by patches/'s patch, not printed; console:\n%s", want, boot.Console)
	}
	t.Logf("booted %s to the marker and powered off in %s", want, boot.Duration.Round(time.Millisecond))
	shareE2EKernel(t, filepath.Join(cfg.Paths.Dist, kernel.LinuxName))

	// The lean profile keeps no debug information but the kernel's symbols: `mage debug`'s
	// breakpoint on start_kernel is set. (The default profile's source lines: TestReproEndToEnd.)
	if final.Get("CONFIG_DEBUG_INFO") == "y" || final.Get("CONFIG_IPV6") == "y" {
		t.Errorf("lean profile: CONFIG_DEBUG_INFO=%s CONFIG_IPV6=%s, want neither", final.Get("CONFIG_DEBUG_INFO"), final.Get("CONFIG_IPV6"))
	}
	checkGdb(t, filepath.Join(cfg.Paths.Dist, kernel.DebugName), cfg.Paths.Cache, "break start_kernel", "Breakpoint 1 at 0x")

	// Nothing changed: the second run does no unpacking and no make.
	start := time.Now()
	again, err := Kernel(ctx, cfg, testLog(t))
	if err != nil || !again.UpToDate {
		t.Fatalf("rerun: up to date %v, err %v", again.UpToDate, err)
	}
	t.Logf("no-op rerun took %s", time.Since(start).Round(time.Millisecond))

	// One more fragment: the build directory is reused and only what depends on the option is built.
	extraFrags := withRepoFragments(t, map[string]string{"99-isofs.config": "CONFIG_ISO9660_FS=y\n"})
	more := m.testConfig(t, version, withSettings(settings, map[string]string{"SUML_KCONFIG": extraFrags,
		"SUML_CACHE": cfg.Paths.Cache, "SUML_DIST": cfg.Paths.Dist}))
	incr, err := Kernel(ctx, more, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if incr.UpToDate || incr.BuildDir != res.BuildDir {
		t.Fatalf("fragment change: up to date %v, build dir %s (first build: %s)", incr.UpToDate, incr.BuildDir, res.BuildDir)
	}
	buildLog, err := os.ReadFile(filepath.Join(incr.BuildDir, "simple-uml-build.log"))
	if err != nil {
		t.Fatal(err)
	}
	if compiled := strings.Count(string(buildLog), "  CC  "); compiled == 0 || compiled > 100 {
		t.Errorf("incremental build compiled %d files; want a handful, not a rebuild", compiled)
	}
	if final, _ := kconf.ParseFile(filepath.Join(cfg.Paths.Dist, kernel.ConfigName)); final.Get("CONFIG_ISO9660_FS") != "y" {
		t.Error("dist/linux.config lacks the new fragment's option")
	}

	// A fragment asking for an option this kernel does not have stops the build and says so.
	frags := withRepoFragments(t, map[string]string{"99-typo.config": "CONFIG_EXT5_FS=y\n"})
	bad := m.testConfig(t, version, withSettings(settings, map[string]string{"SUML_KCONFIG": frags, "SUML_CACHE": cfg.Paths.Cache}))
	_, err = Kernel(ctx, bad, testLog(t))
	var mm *kconf.MismatchError
	if !errors.As(err, &mm) || !strings.Contains(err.Error(), "CONFIG_EXT5_FS requested y") || !strings.Contains(err.Error(), "no Kconfig file") {
		t.Fatalf("unknown option: err = %v", err)
	}
	if _, err := os.Stat(bad.Paths.Dist); err == nil {
		t.Error("a failed configuration created dist/")
	}

	// The same kernel with its first layer taken away (no hostfs patch, module support), in the same
	// cache, and a module for it: the attacker's (see attackerKernel).
	sealedOff := withRepoFragments(t, nil)
	os.WriteFile(filepath.Join(sealedOff, "40-sealed.config"), []byte("# The attack tests' kernel loads modules.\nCONFIG_MODULES=y\n"), 0o644)
	attacker := m.testConfig(t, version, withSettings(settings, map[string]string{"SUML_PATCHES": writeTree(t, map[string]string{
		"series": "# none\n",
	}), "SUML_KCONFIG": sealedOff, "SUML_CACHE": cfg.Paths.Cache}))
	built, err := Kernel(ctx, attacker, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	attackerKernel = keepFile(t, filepath.Join(attacker.Paths.Dist, kernel.LinuxName))
	attackModule = keepFile(t, buildAttackModule(t, built.BuildDir))
}

// checkGdb runs gdb on an unstripped kernel as `mage debug` does (told where the source is) and
// wants want in what it says to command; the kernel must not name the cache folder (its debug
// information maps the source and build folders to kbuild.SourceRoot).
func checkGdb(t *testing.T, debug, cache, command, want string) {
	t.Helper()
	if data, err := os.ReadFile(debug); err != nil || bytes.Contains(data, []byte(cache)) {
		t.Errorf("%s names the cache folder %s (or: %v)", debug, cache, err)
	}
	args := append([]string{"-batch", "-nx"}, kernel.GDBSourceArgs(debug)...)
	out, err := exec.Command("gdb", append(args, "-ex", command, debug)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), want) {
		t.Errorf("gdb %s: %v; want %q in:\n%s", command, err, want, out)
	}
}

func testLog(t testing.TB) io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}
