package pipeline

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

// The bootable test repository: Debian's busybox-static packaged the way Void splits its base system
// (official Void packages are out of reach here). bb-base is the meta package, like base-container.
const (
	busyboxBinary = "/bin/busybox"
	busyboxPkgver = "busybox-1.35.0_1"
)

// markScript is bb-files' INSTALL: every action leaves a line with xbps's arguments and the uid it
// ran as, so the test sees that the scripts ran, in which order, and as root of the guest.
const markScript = `#!/bin/sh
ACTION="$1"; PKGNAME="$2"; VERSION="$3"; UPDATE="$4"; CONF_FILE="$5"; ARCH="$6"
mkdir -p ./var/lib/bb-files
echo "$ACTION $PKGNAME $VERSION $UPDATE $CONF_FILE $ARCH uid=$(id -u)" >> ./var/lib/bb-files/INSTALL.mark
`

// gettyScript is bb-getty's INSTALL: its post action adds a console getty to bb-init's inittab,
// once, as real Void packages edit other packages' files from scripts.
const gettyScript = `#!/bin/sh
case "$1" in
post)
	grep -q getty ./etc/inittab || echo 'tty0::respawn:/usr/bin/getty -L 38400 tty0 linux' >> ./etc/inittab
	;;
esac
`

var busyboxApplets = []string{
	"[", "awk", "cat", "chmod", "chown", "cp", "cut", "date", "df", "dmesg", "echo", "env", "false", "find", "free",
	"getty", "grep", "halt", "head", "hostname", "id", "ifconfig", "init", "ip", "kill", "less", "ln", "login",
	"ls", "mkdir", "mknod", "mount", "mv", "nc", "passwd", "poweroff", "ps", "readlink", "reboot", "rm", "route",
	"sed", "setsid", "sh", "sleep", "sort", "stat", "sync", "tail", "tar", "test", "touch", "tr", "true",
	"umount", "uname", "vi", "wc", "xargs",
}

// busyboxPackages returns the test repository's packages; withScripts adds the INSTALL scripts.
func busyboxPackages(t testing.TB, withScripts bool) []xbpstest.Package {
	t.Helper()
	bb, err := os.ReadFile(busyboxBinary)
	if err != nil {
		t.Fatalf("%s: %v (apt-get install busybox-static)", busyboxBinary, err)
	}
	files := xbpstest.Package{
		Pkgver: "bb-files-1.0_1", License: "Public Domain", ShortDesc: "Base files (test)",
		ConfFiles: []string{"/etc/fstab"},
		Files: map[string]xbpstest.File{
			"./etc/passwd": {Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:99:99:Unprivileged User:/dev/null:/bin/false\n")},
			"./etc/group":  {Data: []byte("root:x:0:\nnogroup:x:99:\n")},
			"./etc/fstab":  {Data: []byte("# <file system> <dir> <type> <options> <dump> <pass>\ntmpfs /tmp tmpfs defaults,nosuid,nodev 0 0\n")},
			"./bin":        {Link: "usr/bin"},
			"./sbin":       {Link: "usr/bin"},
			"./usr/sbin":   {Link: "bin"},
		},
	}
	box := xbpstest.Package{
		Pkgver: busyboxPkgver, License: "GPL-2.0-only", ShortDesc: "Swiss army knife of embedded Linux (Debian's static build)",
		RunDepends:   []string{"bb-files>=1.0_1"},
		Provides:     []string{"awk-0_1"},
		Alternatives: map[string][]string{"vi": {"vi:/usr/bin/busybox", "/usr/share/man/man1/vi.1:/usr/share/man/man1/busybox.1"}},
		Files: map[string]xbpstest.File{
			"./usr/bin/busybox":              {Data: bb, Mode: 0o4755},
			"./usr/share/man/man1/busybox.1": {Data: []byte(".TH BUSYBOX 1\n")},
		},
	}
	for _, a := range busyboxApplets {
		if a != "vi" {
			box.Files["./usr/bin/"+a] = xbpstest.File{Link: "busybox"}
		}
	}
	init := xbpstest.Package{
		Pkgver: "bb-init-1.0_1", License: "Public Domain", ShortDesc: "busybox init and boot script (test)",
		RunDepends: []string{"busybox>=1.30_1", "awk>=0"},
		ConfFiles:  []string{"/etc/inittab"},
		Files: map[string]xbpstest.File{
			"./etc/inittab": {Data: []byte("::sysinit:/etc/rc.sh\n::ctrlaltdel:/usr/bin/reboot -f\n::shutdown:/usr/bin/sync\n")},
			"./etc/rc.sh": {Mode: 0o755, Data: []byte("#!/bin/sh\nmount -t proc proc /proc\nmount -t sysfs sysfs /sys\n" +
				"mount -o remount,rw /\nhostname -F /etc/hostname\necho \"SUML-BOOTED $(uname -r)\"\n")},
		},
	}
	getty := xbpstest.Package{
		Pkgver: "bb-getty-1.0_1", License: "Public Domain", ShortDesc: "a getty on the console (test)",
		RunDepends: []string{"bb-init-1.0_1"},
		Files:      map[string]xbpstest.File{"./usr/share/doc/bb-getty/README": {Data: []byte("adds a getty to /etc/inittab\n")}},
	}
	base := xbpstest.Package{
		Pkgver: "bb-base-1.0_1", License: "Public Domain", ShortDesc: "busybox base system meta package (test)",
		RunDepends: []string{"bb-files>=0", "busybox>=0", "bb-init>=0", "bb-getty>=0"},
	}
	if withScripts {
		files.Install, getty.Install = markScript, gettyScript
	}
	return []xbpstest.Package{files, box, init, getty, base}
}

// xbpsRepo is a signed repository of test packages served over loopback HTTP.
type xbpsRepo struct {
	*httptest.Server
	Dir string
	xbpstest.Repo
}

func newXbpsRepo(t testing.TB, pkgs []xbpstest.Package) *xbpsRepo {
	t.Helper()
	return newSlowXbpsRepo(t, pkgs, 0)
}

// newSlowXbpsRepo answers each request after latency, like a distant mirror.
func newSlowXbpsRepo(t testing.TB, pkgs []xbpstest.Package, latency time.Duration) *xbpsRepo {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &xbpsRepo{Dir: dir, Repo: xbpstest.Repo{Dir: dir, Key: key}}
	if err := r.Write(pkgs); err != nil {
		t.Fatal(err)
	}
	r.Server = httptest.NewServer(slowFiles(dir, latency))
	t.Cleanup(r.Close)
	return r
}

// recipeDir writes a recipe for repo named test.toml (plus an overlay) into a new temporary folder.
func recipeDir(t testing.TB, repo *xbpsRepo, extra string, overlay map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeRecipe(t, dir, repo, extra, overlay)
	return dir
}

// writeRecipe writes dir/test.toml for repo, and its overlay dir/test.overlay.
func writeRecipe(t testing.TB, dir string, repo *xbpsRepo, extra string, overlay map[string]string) {
	t.Helper()
	recipe := fmt.Sprintf(`description = "busybox test system"
arch = "x86_64"
packages = ["bb-base"]
image_size = "64M"
hostname = "suml-test"
root_password = "suml"
authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghi test@example"]
overlay = "test.overlay"
%s
[[repositories]]
url = %q
keys = [%q]
`, extra, repo.URL, repo.Fingerprint())
	if err := os.MkdirAll(filepath.Join(dir, "test.overlay"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.toml"), []byte(recipe), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, body := range overlay {
		p := filepath.Join(dir, "test.overlay", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if strings.HasPrefix(body, "#!") {
			mode = 0o755
		}
		os.WriteFile(p, []byte(body), mode)
	}
}

// rootfsConfig is the repository's configuration with private dist and cache and the test recipes.
func rootfsConfig(t testing.TB, recipes string, extra map[string]string) config.Config {
	t.Helper()
	work := t.TempDir()
	env := map[string]string{
		"SUML_RECIPES":       recipes,
		"SUML_ROOTFS_RECIPE": "test",
		"SUML_CACHE":         filepath.Join(work, "cache"),
		"SUML_DIST":          filepath.Join(work, "dist"),
		"HOME":               work,
	}
	return loadConfig(t, env, extra)
}

// requireImageTools fails under SUML_E2E=1 (CI installs them) and skips elsewhere.
func requireImageTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"fakeroot", "mke2fs", "debugfs"} {
		if _, err := host.LookPath(tool); err != nil {
			if os.Getenv(e2eSwitch) == "1" {
				t.Fatalf("%s missing: apt-get install fakeroot e2fsprogs", tool)
			}
			t.Skipf("%s missing (apt-get install fakeroot e2fsprogs); CI runs this test", tool)
		}
	}
	if _, err := os.Stat(busyboxBinary); err != nil {
		if os.Getenv(e2eSwitch) == "1" {
			t.Fatalf("%s missing: apt-get install busybox-static", busyboxBinary)
		}
		t.Skipf("%s missing (apt-get install busybox-static); CI runs this test", busyboxBinary)
	}
}

// slowFiles serves a folder, each answer after latency.
func slowFiles(dir string, latency time.Duration) http.Handler {
	files := http.FileServer(http.Dir(dir))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(latency)
		files.ServeHTTP(w, r)
	})
}
