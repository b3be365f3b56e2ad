package rootfs

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/GehirnInc/crypt/sha512_crypt"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

var fixtures = filepath.Join("..", "..", "..", "shared", "fixtures", "xbps")

// TestProjectRecipes loads the recipes the project ships: they must parse, validate and pin Void's keys.
func TestProjectRecipes(t *testing.T) {
	dir := filepath.Join("..", "..", "rootfs-recipes")
	names := config.TOMLNames(dir)
	if len(names) < 2 {
		t.Fatalf("recipes: %v, want void-minimal and void-musl", names)
	}
	for _, n := range names {
		r, err := LoadRecipe(dir, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, repo := range r.Repositories {
			for _, k := range repo.Keys {
				if _, ok := VoidKeys[k]; !ok {
					t.Errorf("%s: key %s is not one of Void's official keys", n, k)
				}
			}
		}
		if r.Packages[0] != "base-container" || r.Getty != "tty0" {
			t.Errorf("%s: packages %v getty %q", n, r.Packages, r.Getty)
		}
	}
}

func writeRecipe(t *testing.T, body string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.toml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const validRecipe = `arch = "x86_64"
packages = ["foo"]
image_size = "64M"
[[repositories]]
url = "https://example.org/current/"
keys = ["60AE0CD6F0951780BC93467A89AFA32D"]
`

func TestRecipeValidation(t *testing.T) {
	r, err := LoadRecipe(writeRecipe(t, validRecipe), "r")
	if err != nil {
		t.Fatal(err)
	}
	if r.Repositories[0].URL != "https://example.org/current" || r.Repositories[0].Keys[0] != "60:ae:0c:d6:f0:95:17:80:bc:93:46:7a:89:af:a3:2d" {
		t.Errorf("normalisation: %+v", r.Repositories[0])
	}
	if n, _ := r.ImageBytes(); n != 64<<20 {
		t.Errorf("image size %d", n)
	}
	cases := []struct{ edit, want string }{
		{`arch = "aarch64"`, "x86_64 or x86_64-musl"},
		{`image_size = "1M"`, "too small"},
		{`image_size = "lots"`, "image_size"},
		{`hostname = "bad_host!"`, "not a valid host name"},
		{`services = ["../../etc"]`, "not a runit service name"},
		{`getty = "ttyX"`, "console device"},
		{`authorized_keys = ["just-one-word"]`, "OpenSSH public key"},
		{`overlay = "missing"`, "is not a folder"},
		{`packages = ["foo bar"]`, "bad package pattern"},
		{`root_password = "a:b"`, "must not contain"},
		{`surprise = 1`, "unknown key(s) surprise"},
	}
	for _, c := range cases {
		key := strings.SplitN(c.edit, " ", 2)[0]
		var lines []string
		for _, l := range strings.Split(validRecipe, "\n") {
			if !strings.HasPrefix(l, key+" ") {
				lines = append(lines, l)
			}
		}
		body := c.edit + "\n" + strings.Join(lines, "\n")
		if _, err := LoadRecipe(writeRecipe(t, body), "r"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.edit, err, c.want)
		}
	}
	noKeys := strings.Replace(validRecipe, `keys = ["60AE0CD6F0951780BC93467A89AFA32D"]`, "", 1)
	if _, err := LoadRecipe(writeRecipe(t, noKeys), "r"); err == nil || !strings.Contains(err.Error(), "no trusted keys") {
		t.Errorf("repository without keys: %v", err)
	}
	if _, err := LoadRecipe(t.TempDir(), "../etc"); err == nil {
		t.Error("a recipe name with a path was accepted")
	}
}

// TestLoadUnknownRecipe: a recipe that is not in the folder is refused with the recipes that are,
// as a missing file (a boot falls back on its image's record then).
func TestLoadUnknownRecipe(t *testing.T) {
	dir := writeRecipe(t, validRecipe)
	os.WriteFile(filepath.Join(dir, "b.toml"), []byte(validRecipe), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a recipe"), 0o644)
	_, err := LoadRecipe(dir, "nosuch")
	if want := `unknown recipe "nosuch" in ` + dir + `: b, r`; err == nil || err.Error() != want || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want %q (an fs.ErrNotExist)", err, want)
	}
}

// TestLocalFixtureRepositories stages real packages from the fixture repositories, read as local
// repositories, under each repository's signature policy.
func TestLocalFixtureRepositories(t *testing.T) {
	cases := []struct {
		name     string
		repo     Repository
		arch     string
		packages []string
		want     string // error text; "" for success
	}{
		{"current signed repository", Repository{URL: filepath.Join(fixtures, "Encoded14-void-user-repository/x86_64"), Keys: []string{"1d:c2:cf:d4:08:97:4c:47:5d:88:4c:fd:e9:a5:d0:9a"}},
			"x86_64", []string{"glaze", "hyprland-protocols"}, ""},
		{"musl", Repository{URL: filepath.Join(fixtures, "Encoded14-void-user-repository/x86_64-musl"), Keys: []string{"1d:c2:cf:d4:08:97:4c:47:5d:88:4c:fd:e9:a5:d0:9a"}},
			"x86_64-musl", []string{"hyprland-protocols"}, ""},
		{"legacy .sig refused by default", Repository{URL: filepath.Join(fixtures, "Toasterbirb-void-repo"), Keys: []string{"28:d6:96:4c:b4:33:3e:ea:c1:10:cf:4d:0d:1e:68:7e"}},
			"x86_64", []string{"mononoki-ttf", "md4c"}, "allow_legacy_sig"},
		{"legacy .sig when allowed", Repository{URL: filepath.Join(fixtures, "Toasterbirb-void-repo"), Keys: []string{"28:d6:96:4c:b4:33:3e:ea:c1:10:cf:4d:0d:1e:68:7e"}, AllowLegacySig: true},
			"x86_64", []string{"mononoki-ttf", "md4c", "deluge-gtk"}, ""},
		{"signed repository, unsigned package", Repository{URL: filepath.Join(fixtures, "Zoomers-in-Void-bins"), Keys: []string{"33:68:15:81:00:d5:c3:18:b6:8a:b7:4f:e4:ce:39:bf"}},
			"x86_64", []string{"hello-world"}, "hello-world-2_1: no signature"},
		{"unsigned repository refused", Repository{URL: filepath.Join(fixtures, "Gigahawk-xbps_libselinux"), Keys: []string{"33:68:15:81:00:d5:c3:18:b6:8a:b7:4f:e4:ce:39:bf"}},
			"x86_64", []string{"libsepol"}, "carries no signature data"},
		{"unsigned repository allowed", Repository{URL: filepath.Join(fixtures, "Gigahawk-xbps_libselinux"), AllowUnsigned: true},
			"x86_64", []string{"libsepol-devel"}, ""},
		{"external dependencies named", Repository{URL: filepath.Join(fixtures, "Gigahawk-xbps_libselinux"), AllowUnsigned: true},
			"x86_64", []string{"libselinux-devel"}, "pcre-devel>=0: needed by libselinux-devel-2.9_1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// What the fixture repositories leave to Void's main repository comes from a local stand-in.
			base := baseStandIn(t, c.arch)
			r := &Recipe{Name: "fixture", Path: "fixture.toml", Arch: c.arch, Packages: append(c.packages, "base-sh"), ImageSize: "64M",
				Repositories: []Repository{c.repo, {URL: base, AllowUnsigned: true}}}
			if err := r.validate(); err != nil {
				t.Fatal(err)
			}
			err := stageFixture(t, r)
			if c.want == "" && err != nil {
				t.Fatal(err)
			}
			if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// baseStandIn writes an unsigned local repository with empty packages named like the Void packages
// the fixtures depend on, glibc providing the C library's shared objects.
func baseStandIn(t *testing.T, arch string) string {
	dir := t.TempDir()
	var pkgs []xbpstest.Package
	for _, n := range []string{"font-util", "perl", "python3-setuptools", "python3-chardet", "python3-Twisted", "python3-Mako",
		"python3-xdg", "python3-rencode", "python3-setproctitle", "libtorrent-rasterbar-python3", "python3-Pillow", "python3-gobject"} {
		pkgs = append(pkgs, xbpstest.Package{Pkgver: n + "-1.0_1", Arch: arch})
	}
	pkgs = append(pkgs, xbpstest.Package{Pkgver: "base-sh-1.0_1", Arch: arch, Files: map[string]xbpstest.File{"./usr/bin/sh": {Data: []byte("#!\n"), Mode: 0o755}, "./bin": {Link: "usr/bin"}}})
	pkgs = append(pkgs, xbpstest.Package{Pkgver: "glibc-2.39_1", Arch: arch, ShlibProvides: []string{"libc.so.6", "libdl.so.2", "libm.so.6", "libpthread.so.0"}})
	if err := (xbpstest.Repo{Dir: dir, Arch: arch}).Write(pkgs); err != nil {
		t.Fatal(err)
	}
	return dir
}

// stageRecipe validates r, loads its repositories, resolves, fetches and stages its packages into a
// new tree, as the pipeline does, and reads the tree's xbps database as xbps would when it succeeds.
func stageRecipe(t *testing.T, r *Recipe) (tree string, st *Staged, fetched []*Fetched, err error) {
	t.Helper()
	if err := r.validate(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cache := &fetch.Cache{Dir: t.TempDir(), Quiet: true}
	repos, err := LoadRepositories(ctx, cache, r)
	if err != nil {
		return "", nil, nil, err
	}
	pkgs, err := Resolve(repos, r)
	if err != nil {
		return "", nil, nil, err
	}
	if fetched, err = Fetch(ctx, cache, repos, pkgs, 2); err != nil {
		return "", nil, nil, err
	}
	tree = t.TempDir()
	if st, err = Stage(ctx, tree, r, repos, fetched); err != nil {
		return "", nil, nil, err
	}
	xbpstest.CheckDB(t, tree)
	return tree, st, fetched, nil
}

func stageFixture(t *testing.T, r *Recipe) error {
	tree, st, fetched, err := stageRecipe(t, r)
	if err != nil {
		return err
	}
	db := xbpstest.CheckDB(t, tree)
	for _, p := range fetched {
		e, _ := db[p.Name].(map[string]any)
		if e == nil || e["pkgver"] != p.Pkgver || e["state"] != "installed" {
			t.Errorf("pkgdb entry for %s: %v", p.Pkgver, e)
		}
	}
	if st.Epoch.IsZero() || st.Epoch.After(time.Now()) {
		t.Errorf("epoch %s", st.Epoch)
	}
	return nil
}

func TestGuestExists(t *testing.T) {
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(tree, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(tree, "usr/bin/dash"), nil, 0o755)
	os.Symlink("usr/bin", filepath.Join(tree, "bin"))
	os.Symlink("/usr/bin/dash", filepath.Join(tree, "usr/bin/sh"))     // absolute: resolved in the tree
	os.Symlink("/etc/passwd", filepath.Join(tree, "usr/bin/hostlink")) // exists on the host only
	os.Symlink("loop", filepath.Join(tree, "loop"))
	cases := map[string]bool{"/bin/sh": true, "/usr/bin/sh": true, "/bin/dash": true, "/usr/bin/hostlink": false, "/loop": false, "/bin/../bin/sh": true, "/nope": false}
	for p, want := range cases {
		if got := guestExists(attacktest.OpenRoot(t, tree), p); got != want {
			t.Errorf("guestExists(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestRootPassword(t *testing.T) {
	// Top-level keys go before the [[repositories]] table.
	dir := writeRecipe(t, "root_password = \"s3cret\"\n"+validRecipe)
	r, err := LoadRecipe(dir, "r")
	if err != nil {
		t.Fatal(err)
	}
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(filepath.Join(tree, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:99:99::/:/bin/false\n"), 0o644)
	if err := setRootPassword(attacktest.OpenRoot(t, tree), r, time.Unix(86400*20000, 0)); err != nil {
		t.Fatal(err)
	}
	shadow, _ := os.ReadFile(filepath.Join(tree, "etc/shadow"))
	lines := strings.Split(strings.TrimSpace(string(shadow)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "nobody:*:20000:") {
		t.Fatalf("shadow made from passwd:\n%s", shadow)
	}
	hash := strings.Split(lines[0], ":")[1]
	if err := sha512_crypt.New().Verify(hash, []byte("s3cret")); err != nil || !strings.HasPrefix(hash, "$6$") {
		t.Errorf("root hash %q does not verify: %v", hash, err)
	}
	if fi, _ := os.Stat(filepath.Join(tree, "etc/shadow")); fi.Mode().Perm() != 0o600 {
		t.Errorf("shadow mode %v", fi.Mode())
	}
	// The same recipe gives the same hash: the image stays reproducible.
	again := t.TempDir()
	os.MkdirAll(filepath.Join(again, "etc"), 0o755)
	os.WriteFile(filepath.Join(again, "etc/shadow"), []byte("root:!:1::::::\n"), 0o600)
	setRootPassword(attacktest.OpenRoot(t, again), r, time.Unix(0, 0))
	if s, _ := os.ReadFile(filepath.Join(again, "etc/shadow")); !strings.Contains(string(s), hash) {
		t.Errorf("second hash differs: %s", s)
	}
}

// TestOverlayThroughALink: an overlay that is a symlink to a folder passed validation and then copied
// (and hashed) nothing, because walking a link does not enter it.
func TestOverlayThroughALink(t *testing.T) {
	dir := writeRecipe(t, "overlay = \"ov\"\n"+validRecipe)
	real := t.TempDir()
	os.MkdirAll(filepath.Join(real, "etc"), 0o755)
	os.WriteFile(filepath.Join(real, "etc", "motd"), []byte("hello\n"), 0o644)
	if err := os.Symlink(real, filepath.Join(dir, "ov")); err != nil {
		t.Fatal(err)
	}
	r, err := LoadRecipe(dir, "r")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := r.Digest()
	os.WriteFile(filepath.Join(real, "etc", "motd"), []byte("changed\n"), 0o644)
	if after, _ := r.Digest(); after == before {
		t.Error("a change in the linked overlay does not change the recipe's digest")
	}
	tree := t.TempDir()
	if err := copyOverlay(r.Overlay, attacktest.OpenRoot(t, tree)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(tree, "etc", "motd")); string(got) != "changed\n" {
		t.Errorf("overlay copied %q", got)
	}
}

func TestScriptTimes(t *testing.T) {
	console := "Run /.simple-uml/configure as init process\r\n" +
		ConfigureStep + " pre base-files-0.142_11 at 0.25s\r\n" +
		"Creating system directories/symlinks...\n" +
		ConfigureStep + " post base-files-0.142_11 at 0.51s\n" +
		ConfigureStep + " post ca-certificates-20210119+3.71_1 at 0.61s\n" +
		"[   3.1] a kernel line " + ConfigureStep + " at 9s\n" +
		ConfigureStep + " post glibc-locales-2.32_2 at 6.11s\n" +
		ConfigureStep + " done at 10.61s\n" + ConfigureOK + "\n"
	got := ScriptTimes(console)
	want := []ScriptTime{
		{"post", "ca-certificates-20210119+3.71_1", 5500 * time.Millisecond},
		{"post", "glibc-locales-2.32_2", 4500 * time.Millisecond},
		{"pre", "base-files-0.142_11", 260 * time.Millisecond},
		{"post", "base-files-0.142_11", 100 * time.Millisecond},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i].Pkgver != want[i].Pkgver || got[i].Action != want[i].Action || (got[i].Took-want[i].Took).Abs() > time.Millisecond {
			t.Errorf("%d: got %v, want %v", i, got[i], want[i])
		}
	}
	if len(ScriptTimes(ConfigureStep+" post a-1_1 at 3s\n")) != 0 {
		t.Error("a step the boot never finished has a time")
	}
}
