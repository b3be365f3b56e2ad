package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/uml"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

// The rootfs end-to-end test assembles the bootable busybox repository as an unprivileged user (the
// test re-runs its own binary under uid 65534 when it runs as root), with the INSTALL scripts run in
// a configure boot, then boots the image with the kernel of the kernel end-to-end test.

// childSwitch makes the test binary run the rootfs pipeline instead of tests (see TestMain).
const childSwitch = "SUML_TEST_ROOTFS_CHILD"

// unprivileged is the uid and gid the assembly runs as when the tests run as root.
const unprivileged = 65534

func TestMain(m *testing.M) {
	if dir := os.Getenv(instance.SuperviseVar); dir != "" {
		os.Exit(instance.SuperviseMain(dir, nil)) // an instance's supervisor: a copy of this binary, as of mage's
	}
	if len(os.Args) == 4 && os.Args[1] == "labConsole" {
		os.Exit(labConsoleChild(os.Args[2], os.Args[3]))
	}
	switch os.Getenv(childSwitch) {
	case "1":
		os.Exit(rootfsChild())
	case "boot":
		os.Exit(bootChild())
	case "dist":
		os.Exit(distChild())
	case "rootfs+dist":
		os.Exit(rootfsDistChild())
	case "labtest":
		os.Exit(labTestChild())
	}
	code := m.Run()
	if sharedKernelDir != "" {
		os.RemoveAll(sharedKernelDir)
	}
	for _, f := range e2eCleanup {
		f()
	}
	os.Exit(code)
}

// rootfsChild is the unprivileged side: the real pipeline, configured by SUML_* variables like a
// user's shell: rootfs twice (the second run must do nothing), then `mage test` on the pair.
func rootfsChild() int {
	cfg, err := config.Load(os.Getenv("SUML_TEST_ROOT"), nil)
	if err == nil {
		_, err = Rootfs(context.Background(), cfg, "", os.Stdout)
	}
	if err == nil {
		var again RootfsResult
		again, err = Rootfs(context.Background(), cfg, "", os.Stdout)
		if err == nil && !again.UpToDate {
			err = fmt.Errorf("second run rebuilt the root filesystem")
		}
	}
	if err == nil {
		_, err = GuestTest(context.Background(), cfg, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rootfs and test as uid", os.Getuid(), "failed:", err)
		return 1
	}
	return 0
}

// bootChild is `mage boot` on the terminal the test gives it (a pty made by script(1)).
func bootChild() int {
	cfg, err := config.Load(os.Getenv("SUML_TEST_ROOT"), nil)
	if err == nil {
		err = Boot(context.Background(), cfg, os.Stdin, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "boot failed:", err)
		return 1
	}
	return 0
}

var (
	sharedKernelDir string
	// attackerKernel is the end-to-end kernel with its first layer taken away: built without
	// patches/0001-hostfs-* (its hostfs mounts any host path) and with module support (root in the
	// guest runs attackModule in kernel context), so that only the layers beneath stand between a
	// guest and the host.
	attackerKernel, attackModule string
	e2eCleanup                   []func() // run by TestMain after all tests
)

// keepFile moves a file the kernel test made to a place that outlives that test, removed by TestMain.
func keepFile(t testing.TB, path string) string {
	dir, err := os.MkdirTemp("", "suml-e2e-keep-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	e2eCleanup = append(e2eCleanup, func() { os.RemoveAll(dir) })
	kept := filepath.Join(dir, filepath.Base(path))
	if err := os.Rename(path, kept); err != nil {
		t.Fatal(err)
	}
	return kept
}

// shareE2EKernel keeps a copy of the kernel the kernel end-to-end test built (with its record and
// unstripped twin) for later tests.
func shareE2EKernel(t testing.TB, linux string) {
	var err error
	if sharedKernelDir, err = os.MkdirTemp("", "suml-e2e-kernel-"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(sharedKernelDir, 0o755)
	copyKernel(t, filepath.Dir(linux), sharedKernelDir)
}

// copyKernel copies what `mage kernel` leaves in dist/ from one folder to another.
func copyKernel(t testing.TB, from, to string) {
	t.Helper()
	for _, name := range []string{kernel.LinuxName, manifest.KernelRecordName, kernel.DebugName, kernel.DebugName + ".source", kernel.ConfigName, kernel.SystemMapName, kernel.LicenseName} {
		copyFile(t, filepath.Join(from, name), filepath.Join(to, name), 0o755)
	}
}

// e2eKernel returns a built UML kernel: the kernel end-to-end test's, the one SUML_E2E_KERNEL names
// (to iterate on this test without a five-minute build), or a fresh build from the loopback mirror.
// Go runs a package's tests in file-name order: the files that use it sort after kernel_e2e_test.go,
// so a full run builds the kernel once.
func e2eKernel(t testing.TB) string {
	t.Helper()
	if sharedKernelDir != "" {
		return filepath.Join(sharedKernelDir, kernel.LinuxName)
	}
	if k := os.Getenv("SUML_E2E_KERNEL"); k != "" {
		return k
	}
	m, version := debianMirror(t)
	cfg := m.testConfig(t, version, e2eKernelSettings())
	if _, err := Kernel(context.Background(), cfg, testLog(t)); err != nil {
		t.Fatal(err)
	}
	shareE2EKernel(t, filepath.Join(cfg.Paths.Dist, kernel.LinuxName))
	return filepath.Join(sharedKernelDir, kernel.LinuxName)
}

// checkScript is the test's overlay: booted as init, it prints what the test checks and powers off.
const checkScript = `#!/bin/sh
mount -t proc proc /proc
echo "SUML-CHECK cmdline-root=$(tr ' ' '\n' </proc/cmdline | grep '^root=')"
echo "SUML-CHECK rootfs=$(awk '$2=="/"{print $3}' /proc/mounts | tail -n1)"
echo "SUML-CHECK passwd=$(stat -c %u:%g /etc/passwd)"
echo "SUML-CHECK busybox=$(stat -c %a:%u:%g /usr/bin/busybox)"
echo "SUML-CHECK mark=$(tr '\n' '|' </var/lib/bb-files/INSTALL.mark)"
echo "SUML-CHECK getty=$(grep -c getty /etc/inittab)"
echo "SUML-CHECK installed=$(grep -c '<string>installed</string>' /var/db/xbps/pkgdb-0.38.plist)"
echo "SUML-CHECK configure-left=$(ls -d /.simple-uml 2>/dev/null)"
echo "SUML-CHECK hostname=$(cat /etc/hostname)"
echo "SUML-CHECK END"
poweroff -f
`

// e2ePair is the pair the end-to-end tests boot: the kernel in dist/ (from e2eKernel) and the busybox
// test repository's image, assembled and tested (`mage test`) as an unprivileged user. It is made
// once per test binary; its workspace goes when the tests end.
var e2ePairState struct {
	ws, kernel string
	out        []byte
	owner      int
}

func e2ePair(t testing.TB) (ws string, out []byte, owner int) {
	t.Helper()
	if e2ePairState.ws != "" {
		return e2ePairState.ws, e2ePairState.out, e2ePairState.owner
	}
	sharedKernel := e2eKernel(t)
	repo := newXbpsRepo(t, busyboxPackages(t, true))

	// Everything the unprivileged user reads or writes lives in one folder it owns.
	ws, err := os.MkdirTemp("", "suml-rootfs-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	e2eCleanup = append(e2eCleanup, func() { os.RemoveAll(ws) })
	writeRecipe(t, filepath.Join(ws, "recipes"), repo, "", map[string]string{"usr/libexec/suml-check": checkScript})
	os.MkdirAll(filepath.Join(ws, "root"), 0o755)
	for _, f := range []string{config.FileName, config.LockName} {
		copyFile(t, filepath.Join(repoRoot(t), f), filepath.Join(ws, "root", f), 0o644)
	}
	// dist/ holds the kernel as `mage kernel` leaves it; rootfs and test add to it.
	copyKernel(t, filepath.Dir(sharedKernel), filepath.Join(ws, "dist"))
	env := []string{
		childSwitch + "=1",
		"SUML_TEST_ROOT=" + filepath.Join(ws, "root"),
		"SUML_RECIPES=" + filepath.Join(ws, "recipes"),
		"SUML_ROOTFS_RECIPE=test",
		"SUML_ROOTFS_KERNEL=" + filepath.Join(ws, "dist", kernel.LinuxName),
		"SUML_DIST=" + filepath.Join(ws, "dist"),
		"SUML_CACHE=" + filepath.Join(ws, "cache"),
		// mage test then checks the door these open: the host's loopback (TestBootEndToEnd checks it
		// closed).
		"SUML_BOOT_NET=user", "SUML_BOOT_HOST_ACCESS=true",
		"HOME=" + ws,
		"PATH=" + os.Getenv("PATH"),
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, self, filepath.Join(ws, "pipeline.test"), 0o755)
	cmd := exec.Command(filepath.Join(ws, "pipeline.test"))
	cmd.Env, cmd.Dir = env, ws
	wantOwner := os.Getuid()
	if os.Geteuid() == 0 {
		if err := chownTree(ws, unprivileged); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: unprivileged, Gid: unprivileged}}
		wantOwner = unprivileged
	}
	start := time.Now()
	out, err = cmd.CombinedOutput()
	t.Logf("rootfs as uid %d (%s):\n%s", wantOwner, time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("rootfs as an unprivileged user: %v", err)
	}
	e2ePairState.ws, e2ePairState.out, e2ePairState.owner, e2ePairState.kernel = ws, out, wantOwner, sharedKernel
	return ws, out, wantOwner
}

func TestRootfsEndToEnd(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, out, wantOwner := e2ePair(t)
	kernel := e2ePairState.kernel

	dist := filepath.Join(ws, "dist")
	image, tarball, record := manifest.RootfsFiles(dist, "test")
	for _, p := range []string{image, tarball, record} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != wantOwner {
			t.Errorf("%s belongs to uid %d: the build did not run as %d", p, uid, wantOwner)
		}
	}
	for _, want := range []string{"configure boot done", "test passed: 6 checks", "ok   the host's loopback, opened by boot.host_access", "ok   xbps database: 5 packages (grep)", "ok   guest root loads no kernel module: no module support"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the unprivileged run did not report %q", want)
		}
	}

	_, entries := readRootfsTarball(t, tarball)
	// After the configure boot, the database in the image still reads as xbps reads it.
	xbpstest.CheckDB(t, xbpsDBOf(t, entries))
	mark := string(entries["./var/lib/bb-files/INSTALL.mark"].data)
	wantMark := "pre bb-files 1.0_1 no no x86_64 uid=0\npost bb-files 1.0_1 no no x86_64 uid=0\n"
	if mark != wantMark {
		t.Errorf("INSTALL mark in the tarball:\n%q\nwant (pre, then post, once each, as xbps-install runs them, as root):\n%q", mark, wantMark)
	}
	if inittab := string(entries["./etc/inittab"].data); strings.Count(inittab, "getty") != 1 {
		t.Errorf("bb-getty's post action should add one getty line:\n%s", inittab)
	}
	if e := entries["./etc/passwd"]; e.hdr == nil || e.hdr.Uid != 0 {
		t.Error("tarball: /etc/passwd is not owned by root")
	}

	// Boot the image: first the test's check script as init, then the packages' own init to a login prompt.
	// Boots write to copy-on-write files: the image stays as the record describes it for later tests.
	boot, err := uml.RunUntilExit(context.Background(), uml.Options{Kernel: kernel, Image: image, COW: filepath.Join(t.TempDir(), "check.cow"),
		Init: "/usr/libexec/suml-check", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(boot.Console, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "SUML-CHECK "); ok {
			k, v, _ := strings.Cut(rest, "=")
			got[k] = v
		}
	}
	want := map[string]string{
		"cmdline-root":   "root=/dev/ubda",
		"rootfs":         "ext4",
		"passwd":         "0:0",
		"busybox":        "4755:0:0",
		"mark":           strings.ReplaceAll(wantMark, "\n", "|"),
		"getty":          "1",
		"installed":      "5",
		"configure-left": "",
		"hostname":       "suml-test",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("in the guest: %s = %q, want %q", k, got[k], v)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", boot.Console)
	}
	login, err := uml.RunUntilExit(context.Background(), uml.Options{Kernel: kernel, Image: image, COW: filepath.Join(t.TempDir(), "login.cow"),
		Until: "login:", Timeout: time.Minute})
	if err != nil {
		t.Fatalf("booting the packages' own init to a login prompt: %v", err)
	}
	if !strings.Contains(login.Console, "SUML-BOOTED") {
		t.Errorf("bb-init's rc.sh did not run:\n%s", login.Console)
	}
	t.Logf("booted to the login prompt in %s", login.Duration.Round(time.Millisecond))
}

func copyFile(t testing.TB, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	os.MkdirAll(filepath.Dir(to), 0o755)
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func chownTree(root string, id int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, id, id)
	})
}

// TestRootfsScriptFails: a package whose INSTALL script fails stops the build with the package,
// the action and the status, the console log kept, and nothing in dist/.
func TestRootfsScriptFails(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	cfg, err := rootfsWithPostScript(t, "exit 3\n")
	if err == nil {
		t.Fatal("a failing INSTALL script was accepted")
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{"INSTALL post of bb-getty-1.0_1 exited with status 3", "a package script failed", "full console: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if entries, _ := os.ReadDir(cfg.Paths.Dist); len(entries) > 0 {
		t.Errorf("dist/ keeps %d entries after a failed configure boot", len(entries))
	}
	if _, err := os.Stat(filepath.Join(cfg.Paths.Cache, "rootfs", "test-configure.log")); err != nil {
		t.Errorf("console log: %v", err)
	}
}

// rootfsWithPostScript builds the busybox test system with the configure boot's kernel, its
// bb-getty package's INSTALL script running body as its post action, and returns the configuration
// and what Rootfs returned.
func rootfsWithPostScript(t *testing.T, body string) (config.Config, error) {
	t.Helper()
	kernel := e2eKernel(t)
	pkgs := busyboxPackages(t, true)
	pkgs[3].Install = "#!/bin/sh\n[ \"$1\" = post ] || exit 0\n" + body
	repo := newXbpsRepo(t, pkgs)
	cfg := rootfsConfig(t, recipeDir(t, repo, "", nil), map[string]string{"SUML_ROOTFS_KERNEL": kernel})
	_, err := Rootfs(context.Background(), cfg, "", testLog(t))
	return cfg, err
}

// TestRootfsScriptCannotReachHost: an INSTALL script, run as the guest's root in the configure boot,
// tries to read and write the host's files through hostfs. Nothing is shared with that boot, so the
// mount fails, the script with it, and the build says so; the host's file is untouched.
func TestRootfsScriptCannotReachHost(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	canary := attacktest.NewCanary(t, t.TempDir(), "id_ed25519")
	cfg, err := rootfsWithPostScript(t, fmt.Sprintf("mkdir -p /mnt/host\n"+
		"mount -t hostfs none /mnt/host || exit 7\ncat /mnt/host%[1]s\necho pwned > /mnt/host%[1]s\n", canary.Path))
	if err == nil || !strings.Contains(err.Error(), "INSTALL post of bb-getty-1.0_1 exited with status 7") {
		t.Fatalf("got %v, want the script's failed mount reported", err)
	}
	canary.Check(t)
	console, _ := os.ReadFile(filepath.Join(cfg.Paths.Cache, "rootfs", "test-configure.log"))
	if bytes.Contains(console, canary.Data) {
		t.Error("the configure boot's console holds the host's file")
	}
	if !bytes.Contains(console, []byte("hostfs: no host folder is shared")) {
		t.Errorf("the kernel did not say why the mount failed:\n%s", console)
	}
}

// TestRootfsScriptPlantsLinks: an INSTALL script, as the guest's root in the configure boot, plants
// links to a host file and to the host's / in the image and prints the host path on the console. The
// pipeline reads the image back and packs it without following any of them: the build succeeds,
// the host's file is untouched, and the links arrive in the tarball as links.
func TestRootfsScriptPlantsLinks(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	canary := attacktest.NewCanary(t, t.TempDir(), "id_ed25519")
	cfg, err := rootfsWithPostScript(t, fmt.Sprintf("echo 'reading %[1]s'\n"+
		"ln -sfn %[1]s /planted-file\nln -sfn / /planted-root\nmkdir -p /planted-dir && ln -sfn %[1]s /planted-dir/again\n", canary.Path))
	if err != nil {
		t.Fatal(err)
	}
	canary.Check(t)
	_, tarball, _ := manifest.RootfsFiles(cfg.Paths.Dist, "test")
	_, entries := readRootfsTarball(t, tarball)
	for name, target := range map[string]string{"./planted-file": canary.Path, "./planted-root": "/", "./planted-dir/again": canary.Path} {
		e, ok := entries[name]
		if !ok || e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != target {
			t.Errorf("%s in the tarball: %+v, want a link to %s", name, e.hdr, target)
		}
	}
	for name, e := range entries {
		if bytes.Contains(e.data, canary.Data) {
			t.Errorf("%s in the tarball holds the host's file", name)
		}
	}
	console, _ := os.ReadFile(filepath.Join(cfg.Paths.Cache, "rootfs", "test-configure.log"))
	if !bytes.Contains(console, []byte("reading "+canary.Path)) || bytes.Contains(console, canary.Data) {
		t.Errorf("the configure boot's console: want the script's line and not the host's file:\n%s", console)
	}
}
