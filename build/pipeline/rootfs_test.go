package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/rootfs"
	"github.com/simple-uml/simple-uml/build/xbps"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

// tarEntry is one entry of a rootfs tarball, with its content for small files.
type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func readRootfsTarball(t testing.TB, path string) ([]string, map[string]tarEntry) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var order []string
	entries := map[string]tarEntry{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var data []byte
		if hdr.Typeflag == tar.TypeReg && hdr.Size < 1<<20 {
			data, _ = io.ReadAll(tr)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		order = append(order, name)
		entries[name] = tarEntry{hdr, data}
	}
	return order, entries
}

// TestRootfsAssembles runs the real pipeline on the test repository without INSTALL scripts (so no
// kernel is needed) and checks the image, the tarball and the manifest, then the no-op rerun.
func TestRootfsAssembles(t *testing.T) {
	requireImageTools(t)
	repo := newXbpsRepo(t, busyboxPackages(t, false))
	recipes := recipeDir(t, repo, "", map[string]string{"etc/motd": "made by the overlay\n"})
	cfg := rootfsConfig(t, recipes, nil)
	ctx := context.Background()

	res, err := Rootfs(ctx, cfg, "", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Record.Tools["mke2fs"], "mke2fs 1.") || !strings.HasPrefix(res.Record.Tools["fakeroot"], "fakeroot version") {
		t.Errorf("tool versions: %v", res.Record.Tools)
	}
	if res.UpToDate || res.Record.Configure != nil {
		t.Fatalf("first run: up to date %v, configure %+v", res.UpToDate, res.Record.Configure)
	}
	want := map[string]bool{"bb-files-1.0_1": true, busyboxPkgver: true, "bb-init-1.0_1": true, "bb-getty-1.0_1": true, "bb-base-1.0_1": false}
	if len(res.Record.Packages) != len(want) {
		t.Fatalf("manifest lists %d packages, want %d", len(res.Record.Packages), len(want))
	}
	for _, p := range res.Record.Packages {
		auto, ok := want[p.Pkgver]
		if !ok || p.Automatic != auto || p.Verified != "sig2" || p.Repository != repo.URL || len(p.SHA256) != 64 || p.Size == 0 || p.License == "" {
			t.Errorf("manifest entry %+v", p)
		}
	}
	if res.Record.Packages[len(want)-1].Pkgver != "bb-base-1.0_1" {
		t.Errorf("install order: dependencies first, got %s last", res.Record.Packages[len(want)-1].Pkgver)
	}

	fi, err := os.Stat(res.Image)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Size() != 64<<20 || st.Blocks*512 >= fi.Size()/2 {
		t.Errorf("image: size %d, %d bytes allocated: want 64 MiB and sparse", fi.Size(), st.Blocks*512)
	}

	order, entries := readRootfsTarball(t, res.Tarball)
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Fatalf("tarball entries not sorted: %s before %s", order[i-1], order[i])
		}
	}
	epoch := entries["./etc/passwd"].hdr.ModTime
	for name, e := range entries {
		if e.hdr.Uid != 0 || e.hdr.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want root", name, e.hdr.Uid, e.hdr.Gid)
		}
		if !e.hdr.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %s, want the fixed %s", name, e.hdr.ModTime, epoch)
		}
		if strings.HasPrefix(name, "./lost+found") || strings.HasPrefix(name, "./.simple-uml") {
			t.Errorf("%s in the tarball", name)
		}
	}
	checks := []struct {
		name     string
		typ      byte
		mode     int64
		contains string // content, or link target
	}{
		{"./usr/bin/busybox", tar.TypeReg, 0o4755, ""},
		{"./bin", tar.TypeSymlink, -1, "usr/bin"},
		{"./usr/bin/sh", tar.TypeSymlink, -1, "busybox"},
		{"./usr/bin/vi", tar.TypeSymlink, -1, "busybox"},                // alternatives: relative link in the target's folder
		{"./usr/share/man/man1/vi.1", tar.TypeSymlink, -1, "busybox.1"}, // absolute target made relative
		{"./etc/hostname", tar.TypeReg, 0o644, "suml-test\n"},
		{"./etc/fstab", tar.TypeReg, 0o644, "tmpfs /tmp tmpfs defaults,nosuid,nodev 0 0\n/dev/ubda  /  ext4"},
		{"./etc/shadow", tar.TypeReg, 0o600, "root:$6$"},
		{"./root", tar.TypeDir, 0o700, ""},
		{"./tmp", tar.TypeDir, 0o1777, ""},
		{"./root/.ssh/authorized_keys", tar.TypeReg, 0o600, "ssh-ed25519 "},
		{"./etc/motd", tar.TypeReg, 0o644, "made by the overlay"},
		{"./etc/xbps.d/00-repository-main.conf", tar.TypeReg, 0o644, "repository=" + repo.URL},
		{"./var/db/xbps/keys/" + repo.Fingerprint() + ".plist", tar.TypeReg, 0o644, "<data>LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K"}, // base64 of the PEM header,
		{"./var/db/xbps/.busybox-files.plist", tar.TypeReg, 0o644, "/usr/bin/busybox"},
	}
	for _, c := range checks {
		e, ok := entries[c.name]
		switch {
		case !ok:
			t.Errorf("%s missing from the tarball", c.name)
		case e.hdr.Typeflag != c.typ:
			t.Errorf("%s: type %q, want %q", c.name, e.hdr.Typeflag, c.typ)
		case c.mode >= 0 && e.hdr.Mode != c.mode:
			t.Errorf("%s: mode %o, want %o", c.name, e.hdr.Mode, c.mode)
		case c.typ == tar.TypeSymlink && e.hdr.Linkname != c.contains:
			t.Errorf("%s -> %s, want -> %s", c.name, e.hdr.Linkname, c.contains)
		case c.typ == tar.TypeReg && !strings.Contains(string(e.data), c.contains):
			t.Errorf("%s does not contain %q:\n%s", c.name, c.contains, e.data)
		}
	}
	checkPkgdb(t, xbpsDBOf(t, entries), want)

	// Nothing changed: nothing is fetched or built.
	start := time.Now()
	again, err := Rootfs(ctx, cfg, "", testLog(t))
	if err != nil || !again.UpToDate {
		t.Fatalf("rerun: up to date %v, err %v", again.UpToDate, err)
	}
	t.Logf("no-op rerun took %s", time.Since(start).Round(time.Millisecond))

	// A changed recipe is a new input.
	data, _ := os.ReadFile(filepath.Join(recipes, "test.toml"))
	os.WriteFile(filepath.Join(recipes, "test.toml"), bytes.Replace(data, []byte(`"suml-test"`), []byte(`"suml-other"`), 1), 0o644)
	changed, err := Rootfs(ctx, cfg, "", testLog(t))
	if err != nil || changed.UpToDate || changed.Record.InputKey == res.Record.InputKey {
		t.Fatalf("changed recipe: up to date %v, err %v", changed.UpToDate, err)
	}
}

// xbpsDBOf writes the regular files of a rootfs tarball's var/db/xbps into a new tree.
func xbpsDBOf(t testing.TB, entries map[string]tarEntry) string {
	tree := t.TempDir()
	for name, e := range entries {
		if !strings.HasPrefix(name, "./var/db/xbps/") || e.hdr.Typeflag != tar.TypeReg {
			continue
		}
		p := filepath.Join(tree, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, e.data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// checkPkgdb reads the package database of an unpacked tree as xbps would and checks every package
// is installed with xbps's fields: automatic-install only for dependencies.
func checkPkgdb(t testing.TB, tree string, want map[string]bool) {
	t.Helper()
	db := xbpstest.CheckDB(t, tree)
	for pkgver, auto := range want {
		name, _, _ := xbps.SplitPkgver(pkgver)
		e, ok := db[name].(map[string]any)
		if !ok {
			t.Errorf("pkgdb has no %s", name)
			continue
		}
		if a, has := e["automatic-install"]; e["pkgver"] != pkgver || e["state"] != "installed" || has != auto || (has && a != true) ||
			e["install-date"] == nil || e["repository"] == nil {
			t.Errorf("pkgdb %s: %v", name, e)
		}
	}
	alts, _ := db["_XBPS_ALTERNATIVES_"].(map[string]any)
	if vi, _ := alts["vi"].([]any); len(vi) != 1 || vi[0] != "busybox" {
		t.Errorf("pkgdb alternatives: %v", db["_XBPS_ALTERNATIVES_"])
	}
}

// TestRootfsRefusesBadInput serves a broken repository in each case: the pipeline must fail with an
// error naming the problem, and leave nothing in dist/.
func TestRootfsRefusesBadInput(t *testing.T) {
	requireImageTools(t)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	cases := []struct {
		name   string
		pkgs   func([]xbpstest.Package) []xbpstest.Package
		mutate func(t *testing.T, r *xbpsRepo)
		recipe string // extra recipe lines
		keys   string // replaces the trusted key
		want   []string
	}{
		{name: "flipped byte in a package", mutate: func(t *testing.T, r *xbpsRepo) {
			flip(t, filepath.Join(r.Dir, "bb-init-1.0_1.x86_64.xbps"))
		}, want: []string{"bb-init-1.0_1", "differs from the index"}},
		{name: "signature from another key", mutate: func(t *testing.T, r *xbpsRepo) {
			p := filepath.Join(r.Dir, "bb-getty-1.0_1.x86_64.xbps")
			data, _ := os.ReadFile(p)
			sum := sha256.Sum256(data)
			sig, _ := rsa.SignPKCS1v15(rand.Reader, other, crypto.SHA256, sum[:])
			os.WriteFile(p+".sig2", sig, 0o644)
		}, want: []string{"bb-getty-1.0_1", "does not verify"}},
		{name: "unsigned package in a signed repository", mutate: func(t *testing.T, r *xbpsRepo) {
			os.Remove(filepath.Join(r.Dir, "bb-files-1.0_1.x86_64.xbps.sig2"))
		}, want: []string{"bb-files-1.0_1", "no signature"}},
		{name: "index sha256 disagrees", mutate: func(t *testing.T, r *xbpsRepo) {
			// Re-index after swapping in another build of the package: its signature still matches
			// the file, but the index says otherwise.
			p := filepath.Join(r.Dir, "bb-getty-1.0_1.x86_64.xbps")
			data, _ := os.ReadFile(p)
			os.WriteFile(p, append(data, 0), 0o644)
		}, want: []string{"bb-getty-1.0_1", "differs from the index"}},
		{name: "unknown key", keys: "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff", want: []string{"does not trust", "signed by key"}},
		{name: "unsatisfiable request", recipe: `packages = ["bb-base", "no-such-tool>=2"]`, want: []string{"no-such-tool>=2: requested"}},
		{name: "unsatisfiable dependency", pkgs: func(p []xbpstest.Package) []xbpstest.Package {
			p[2].RunDepends = append(p[2].RunDepends, "libfoo>=1.0_1")
			return p
		}, want: []string{"libfoo>=1.0_1: needed by bb-base-1.0_1 -> bb-init-1.0_1"}},
		{name: "package escaping the root", pkgs: func(p []xbpstest.Package) []xbpstest.Package {
			p[3].Files["./usr/share/doc/bb-getty/etc"] = xbpstest.File{Link: "/etc"}
			p[3].Raw = append(p[3].Raw, &tar.Header{Name: "./usr/share/doc/bb-getty/etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
			return p
		}, want: []string{"bb-getty-1.0_1", "symbolic link", "refusing"}},
		{name: "dot-dot entry", pkgs: func(p []xbpstest.Package) []xbpstest.Package {
			p[3].Raw = append(p[3].Raw, &tar.Header{Name: "./../../outside", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
			return p
		}, want: []string{"bb-getty-1.0_1", "contains .."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkgs := busyboxPackages(t, false)
			if c.pkgs != nil {
				pkgs = c.pkgs(pkgs)
			}
			repo := newXbpsRepo(t, pkgs)
			if c.mutate != nil {
				c.mutate(t, repo)
			}
			recipes := recipeDir(t, repo, c.recipe, nil)
			if c.keys != "" {
				p := filepath.Join(recipes, "test.toml")
				data, _ := os.ReadFile(p)
				os.WriteFile(p, bytes.Replace(data, []byte(repo.Fingerprint()), []byte(c.keys), 1), 0o644)
			}
			if c.recipe != "" {
				p := filepath.Join(recipes, "test.toml")
				data, _ := os.ReadFile(p)
				os.WriteFile(p, bytes.Replace(data, []byte("packages = [\"bb-base\"]\n"), nil, 1), 0o644)
			}
			cfg := rootfsConfig(t, recipes, nil)
			_, err := Rootfs(context.Background(), cfg, "", testLog(t))
			if err == nil {
				t.Fatal("bad input accepted")
			}
			t.Logf("refused: %v", err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if entries, _ := os.ReadDir(cfg.Paths.Dist); len(entries) > 0 {
				t.Errorf("dist/ has %d entries after a failure", len(entries))
			}
		})
	}
}

func flip(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRootfsRecipeErrors checks that a bad recipe is refused by name before anything is fetched.
func TestRootfsRecipeErrors(t *testing.T) {
	repo := newXbpsRepo(t, busyboxPackages(t, false))
	cases := map[string]string{
		`image_size = "2X"`:          "image_size",
		`services = ["sshd"]`:        `service "sshd": no /etc/sv/sshd`,
		`getty = "../../etc/passwd"`: "getty",
		`colour = "blue"`:            "unknown key(s) colour",
		`timezone = "Mars/Olympus"`:  "timezone",
		`root_password_hash = "x"`:   "not both",
	}
	for extra, want := range cases {
		t.Run(extra, func(t *testing.T) {
			recipes := recipeDir(t, repo, extra, nil)
			if strings.HasPrefix(extra, "image_size") {
				p := filepath.Join(recipes, "test.toml")
				data, _ := os.ReadFile(p)
				os.WriteFile(p, bytes.Replace(data, []byte("image_size = \"64M\"\n"), nil, 1), 0o644)
			}
			cfg := rootfsConfig(t, recipes, nil)
			_, err := Rootfs(context.Background(), cfg, "", testLog(t))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want an error with %q", err, want)
			}
		})
	}
	_, err := Rootfs(context.Background(), rootfsConfig(t, t.TempDir(), nil), "nope", testLog(t))
	if err == nil || !strings.Contains(err.Error(), `recipe "nope"`) {
		t.Errorf("missing recipe: %v", err)
	}
}

// TestMakeImageRefusesBadSize: the image step refuses a recipe whose size does not read (one not made
// by LoadRecipe, which checks it) with the recipe and the key, before any tool runs or dist/ is made.
func TestMakeImageRefusesBadSize(t *testing.T) {
	for _, tt := range []struct{ size, want string }{
		{"", `recipe r.toml: image_size is empty: set e.g. "2G"`},
		{"2X", `recipe r.toml: image_size "2X": want a size such as 512M or 2G`},
	} {
		dist := filepath.Join(t.TempDir(), "dist")
		b := &rootfsBuild{cfg: config.Config{Paths: config.Paths{Dist: dist}}, recipe: &rootfs.Recipe{Path: "r.toml", ImageSize: tt.size}}
		if err := b.makeImage(context.Background()); err == nil || err.Error() != tt.want {
			t.Errorf("image_size %q: err = %v, want %q", tt.size, err, tt.want)
		}
		if _, err := os.Stat(dist); err == nil {
			t.Errorf("image_size %q: dist/ was made", tt.size)
		}
	}
}

// TestRootfsCancelled stops a build during its downloads, as Ctrl-C does: the error says so and
// neither dist/ nor the cache's work folder keeps anything half-written; the rerun then succeeds.
func TestRootfsCancelled(t *testing.T) {
	requireImageTools(t)
	repo := newSlowXbpsRepo(t, busyboxPackages(t, false), 300*time.Millisecond)
	cfg := rootfsConfig(t, recipeDir(t, repo, "", nil), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := Rootfs(ctx, cfg, "", testLog(t))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the cancellation", err)
	}
	if entries, _ := os.ReadDir(cfg.Paths.Dist); len(entries) > 0 {
		t.Errorf("dist/ has %d entries after cancelling", len(entries))
	}
	if entries, _ := os.ReadDir(filepath.Join(cfg.Paths.Cache, "rootfs")); len(entries) > 0 {
		t.Errorf("the cache keeps %d work folders after cancelling", len(entries))
	}
	partial, _ := filepath.Glob(filepath.Join(cfg.Paths.Cache, "partial", "*"))
	if _, err := Rootfs(context.Background(), cfg, "", testLog(t)); err != nil {
		t.Fatalf("rerun after cancelling (partial downloads: %v): %v", partial, err)
	}
}
