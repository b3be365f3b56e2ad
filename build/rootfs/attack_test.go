package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/xbps"
	"github.com/simple-uml/simple-uml/build/xbps/proplib"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

// hostileIndexRepo writes a served repository of one good package whose index entry is then changed
// by edit, as anyone who controls the (unsigned) index could change it.
func hostileIndexRepo(t *testing.T, edit func(entry map[string]any)) (url string) {
	t.Helper()
	dir := t.TempDir()
	repo := xbpstest.Repo{Dir: dir, Arch: "x86_64"}
	pkg := xbpstest.Package{Pkgver: "base-sh-1.0_1", Files: map[string]xbpstest.File{"./usr/bin/sh": {Data: []byte("#!\n"), Mode: 0o755}}}
	if err := repo.Write([]xbpstest.Package{pkg}); err != nil {
		t.Fatal(err)
	}
	index := readIndexDict(t, filepath.Join(dir, "x86_64-repodata"))
	edit(index["base-sh"].(map[string]any))
	if err := repo.WriteRepodata(index); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAttackIndexDigestIsAPath is the review's critical finding: a filename-sha256 of 64 characters
// that is a path made the cache delete and rewrite a file outside it. The index is refused where it is
// read, naming the entry, and the cache refuses such a digest on its own.
func TestAttackIndexDigestIsAPath(t *testing.T) {
	home := t.TempDir()
	canary := attacktest.NewCanary(t, filepath.Join(home, "victims"), ".profile")
	cacheDir := filepath.Join(home, "cache")
	// Relative to <cache>/sha256/, the 64 characters climb to home/victims/.profile.
	hostile := strings.Repeat("./", 21) + "../../victims/.profile"
	if len(hostile) != 64 {
		t.Fatalf("hostile digest is %d characters", len(hostile))
	}
	cases := []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"digest is a path", func(e map[string]any) { e["filename-sha256"] = hostile }, "filename-sha256"},
		{"digest in upper case", func(e map[string]any) { e["filename-sha256"] = strings.ToUpper(e["filename-sha256"].(string)) }, "filename-sha256"},
		{"pkgver with a newline", func(e map[string]any) { e["pkgver"] = "base-sh-1.0_1\npid 1: rm -rf ~" }, "pkgver"},
		{"pkgver with a slash", func(e map[string]any) { e["pkgver"] = "base-sh-../../../victims/.profile#-1.0_1" }, "pkgver"},
		{"architecture with a slash", func(e map[string]any) { e["architecture"] = "../../victims/.profile#" }, "architecture"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url := hostileIndexRepo(t, c.edit)
			r := &Recipe{Name: "attack", Path: "attack.toml", Arch: "x86_64", Packages: []string{"base-sh"}, ImageSize: "64M",
				Repositories: []Repository{{URL: url, AllowUnsigned: true}}}
			if err := r.validate(); err != nil {
				t.Fatal(err)
			}
			cache := &fetch.Cache{Dir: cacheDir, Quiet: true}
			_, err := LoadRepositories(context.Background(), cache, r)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), url) {
				t.Fatalf("got %v, want an error naming the repository and %q", err, c.want)
			}
			canary.Check(t)
		})
	}
	t.Run("cache refuses the digest by itself", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("evil")) }))
		defer srv.Close()
		cache := &fetch.Cache{Dir: cacheDir, Quiet: true, Attempts: 1}
		if _, err := cache.File(context.Background(), srv.URL+"/x\nsecond line", hostile); err == nil || !strings.Contains(err.Error(), "not 64 hex digits") {
			t.Fatalf("got %v", err)
		}
		canary.Check(t)
		if _, err := os.Stat(filepath.Join(cacheDir, "locks")); err == nil {
			entries, _ := os.ReadDir(filepath.Join(cacheDir, "locks"))
			if len(entries) > 0 {
				t.Errorf("a lock file was made for a refused digest: %v", entries)
			}
		}
	})
}

// readIndexDict reads index.plist of a repodata file as a plain dictionary, for tests to change.
func readIndexDict(t *testing.T, repodata string) map[string]any {
	t.Helper()
	f, err := os.Open(repodata)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dr, _, closer, err := xbps.Decompress(f)
	if err != nil {
		t.Fatal(err)
	}
	defer closer()
	tr := tar.NewReader(dr)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("no index.plist in %s: %v", repodata, err)
		}
		if hdr.Name == "index.plist" {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			v, err := proplib.Unmarshal(data)
			if err != nil {
				t.Fatal(err)
			}
			return v.(map[string]any)
		}
	}
}

// rawRename changes a name in an image's bytes, as a guest with the raw block device can: old must
// occur exactly once and new have its length.
func rawRename(t *testing.T, img, old, new string) {
	t.Helper()
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte(old)); n != 1 || len(old) != len(new) {
		t.Fatalf("%q occurs %d times in the image", old, n)
	}
	if err := os.WriteFile(img, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAttackGuestImage hands the reader images a guest could write. Before, debugfs's rdump wrote the
// image's names on the host and followed its symlinks: a symlink to a host file plus a second entry of
// the same name overwrote the host file. Now every such image is refused, naming the image and the
// entry, and nothing outside the output's folder is touched or read.
func TestAttackGuestImage(t *testing.T) {
	needImageTools(t)
	ctx := context.Background()
	epoch := time.Unix(1732000000, 0)
	home := t.TempDir()
	canary := attacktest.NewCanary(t, filepath.Join(home, "victim"), "id_ed25519")
	cases := []struct {
		name  string
		tree  func(tree string)
		craft func(t *testing.T, img string)
		want  string // "" when the image must be read, with its names kept exactly
	}{
		{"symlink to a host file and a second entry of its name",
			func(tree string) {
				os.Symlink(canary.Path, filepath.Join(tree, "aaaaaaaaaaaa1"))
				os.WriteFile(filepath.Join(tree, "aaaaaaaaaaaa2"), []byte("OVERWRITTEN"), 0o644)
			},
			func(t *testing.T, img string) { rawRename(t, img, "aaaaaaaaaaaa2", "aaaaaaaaaaaa1") },
			"two entries are named"},
		{"a name with a slash",
			func(tree string) { os.WriteFile(filepath.Join(tree, "bbbbbbbbbbbbXetc"), []byte("x"), 0o644) },
			func(t *testing.T, img string) { rawRename(t, img, "bbbbbbbbbbbbXetc", "bbbbbbbbbbbb/etc") },
			"is not a file name"},
		{"a name that is dot-dot",
			func(tree string) { os.WriteFile(filepath.Join(tree, "cc"), []byte("x"), 0o644) },
			func(t *testing.T, img string) {
				data, _ := os.ReadFile(img)
				// "cc" is too common a pair of bytes to find alone: match it with its dirent header.
				i := bytes.Index(data, []byte{2, 1, 'c', 'c'})
				if i < 0 {
					t.Fatal("no dirent for cc")
				}
				copy(data[i+2:], "..")
				os.WriteFile(img, data, 0o644)
			},
			"\"..\""},
		{"a directory linked into itself",
			func(tree string) { os.MkdirAll(filepath.Join(tree, "d"), 0o755) },
			func(t *testing.T, img string) {
				g := &guestImage{dir: t.TempDir()}
				if err := g.walk(ctx, img); err != nil {
					t.Fatal(err)
				}
				for _, e := range g.Entries {
					if e.Path == "/d" {
						debugfs(t, img, fmt.Sprintf("ln <%d> /d/loop\n", e.Ino))
					}
				}
			},
			"loop"},
		{"names with newlines and a symlink out are kept as they are, never followed",
			func(tree string) {
				os.WriteFile(filepath.Join(tree, "x\n/12/100644/0/0/evil/1/"[:2]+"y"), []byte("newline"), 0o644)
				os.Symlink(canary.Path, filepath.Join(tree, "out"))
			},
			func(t *testing.T, img string) {},
			""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tree := t.TempDir()
			os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
			c.tree(tree)
			dir := t.TempDir()
			img := filepath.Join(dir, "guest.ext4")
			opts := ImageOptions{Size: 8 << 20, UUID: "01234567-89ab-4def-8123-456789abcdef", Label: "t", Epoch: epoch, Log: io.Discard}
			if err := MakeImage(ctx, tree, img, opts); err != nil {
				t.Fatal(err)
			}
			c.craft(t, img)
			out := filepath.Join(dir, "out.ext4")
			errRe := Reimage(ctx, img, out, opts)
			var tarball bytes.Buffer
			errTar := Tarball(ctx, img, &tarball, epoch)
			canary.Check(t)
			if c.want == "" {
				if errRe != nil || errTar != nil {
					t.Fatalf("Reimage: %v; Tarball: %v", errRe, errTar)
				}
				if bytes.Contains(tarball.Bytes(), canary.Data) {
					t.Error("the tarball holds the host file")
				}
				headers := tarHeaders(t, tarball.Bytes())
				if h := headers["./x\ny"]; h == nil || h.Typeflag != tar.TypeReg {
					t.Errorf("entry ./x\\ny: %+v", h)
				}
				if h := headers["./out"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != canary.Path {
					t.Errorf("entry ./out: %+v", h)
				}
				data, _ := os.ReadFile(out)
				if bytes.Contains(data, canary.Data) {
					t.Error("the image made again holds the host file")
				}
				return
			}
			for what, err := range map[string]error{"Reimage": errRe, "Tarball": errTar} {
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), img) {
					t.Errorf("%s: got %v, want an error naming the image and %q", what, err, c.want)
				}
			}
			left, _ := os.ReadDir(dir)
			if len(left) != 1 {
				t.Errorf("left behind in the output folder: %v", left)
			}
		})
	}
}

func debugfs(t *testing.T, img, script string) {
	t.Helper()
	cmd := exec.Command("debugfs", "-w", "-f", "-", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
}

// tarHeaders reads a tar's headers by entry name.
func tarHeaders(t *testing.T, data []byte) map[string]*tar.Header {
	t.Helper()
	headers := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return headers
		}
		if err != nil {
			t.Fatal(err)
		}
		headers[h.Name] = h
	}
}

// stageLocal stages packages from an unsigned local repository with a root password set, as a recipe
// would, and returns the tree.
func stageLocal(t *testing.T, pkgs []xbpstest.Package, names []string) (string, *Staged, error) {
	t.Helper()
	dir := t.TempDir()
	if err := (xbpstest.Repo{Dir: dir, Arch: "x86_64"}).Write(pkgs); err != nil {
		t.Fatal(err)
	}
	r := &Recipe{Name: "attack", Path: "attack.toml", Arch: "x86_64", Packages: names, ImageSize: "64M", RootPasswdHash: "$6$x$y",
		Repositories: []Repository{{URL: dir, AllowUnsigned: true}}}
	tree, st, _, err := stageRecipe(t, r)
	return tree, st, err
}

// TestAttackStagedTreeLinks: packages (signed content) and the index (unsigned) put links in the tree
// that point at host files; the settings step read /etc/fstab, /etc/shadow and /etc/passwd through
// them on the host and copied the host files into the image. Now every read and write of the tree is
// resolved inside it, as the guest would resolve it.
func TestAttackStagedTreeLinks(t *testing.T) {
	home := t.TempDir()
	secret := attacktest.NewCanary(t, filepath.Join(home, ".ssh"), "id_ed25519")
	climb := strings.Repeat("../", 30) + strings.TrimPrefix(secret.Path, "/")
	passwd := xbpstest.File{Data: []byte("root:x:0:0:root:/root:/bin/sh\n")}
	cases := []struct {
		name  string
		files map[string]xbpstest.File
		alts  map[string][]string
	}{
		{"fstab is an absolute link to a host file", map[string]xbpstest.File{"./etc/passwd": passwd, "./etc/fstab": {Link: secret.Path}}, nil},
		{"shadow climbs out with ..", map[string]xbpstest.File{"./etc/passwd": passwd, "./etc/shadow": {Link: climb}}, nil},
		{"passwd is a link and there is no shadow", map[string]xbpstest.File{"./etc/passwd": {Link: secret.Path}}, nil},
		{"a parent folder is a link out", map[string]xbpstest.File{"./etc": {Link: filepath.Dir(secret.Path)}}, nil},
		{"alternatives from the index climb out", map[string]xbpstest.File{"./etc/passwd": passwd},
			map[string][]string{"fstab": {"/etc/fstab:" + climb}, "shadow": {"shadow:/" + climb}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pkg := xbpstest.Package{Pkgver: "base-files-1.0_1", Files: c.files, Alternatives: c.alts}
			tree, _, err := stageLocal(t, []xbpstest.Package{pkg}, []string{"base-files"})
			secret.Check(t)
			if tree != "" {
				secret.NotIn(t, tree)
			}
			if err == nil {
				// The links were replaced by the files the image needs, not written through.
				for _, f := range []string{"etc/fstab", "etc/shadow"} {
					if fi, err := os.Lstat(filepath.Join(tree, f)); err != nil || !fi.Mode().IsRegular() {
						t.Errorf("%s: %v %v", f, fi, err)
					}
				}
			} else if !strings.Contains(err.Error(), "etc") {
				t.Errorf("refused without naming the file: %v", err)
			}
		})
	}
}

// TestAttackSetuidOnHost: a package's setuid files were real setuid files of the build's user on the
// host while the tree existed (root's, when run as root). The tree now has none; the image gets them.
func TestAttackSetuidOnHost(t *testing.T) {
	pkg := xbpstest.Package{Pkgver: "shadow-1.0_1", Files: map[string]xbpstest.File{
		"./usr/bin/passwd": {Data: []byte("#!/bin/sh\n"), Mode: 0o4755},
		"./usr/bin/wall":   {Data: []byte("#!/bin/sh\n"), Mode: 0o2755},
		"./etc/passwd":     {Data: []byte("root:x:0:0:root:/root:/bin/sh\n")},
	}}
	tree, st, err := stageLocal(t, []xbpstest.Package{pkg}, []string{"shadow"})
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(tree, func(p string, d os.DirEntry, err error) error {
		if fi, err := d.Info(); err == nil && fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
			t.Errorf("%s is %v on the host", p, fi.Mode())
		}
		return nil
	})
	if st.Modes["/usr/bin/passwd"] != 0o4755 || st.Modes["/usr/bin/wall"] != 0o2755 {
		t.Errorf("modes for the image: %v", st.Modes)
	}
}

// TestAttackModeThroughALink: a setuid mode recorded for a path that a later step made a link (to a
// host file) was applied by chmod, which follows links, to the host file.
func TestAttackModeThroughALink(t *testing.T) {
	needImageTools(t)
	canary := attacktest.NewCanary(t, t.TempDir(), "victim")
	os.Chmod(canary.Path, 0o600)
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(tree, "usr/bin"), 0o755)
	os.Symlink(canary.Path, filepath.Join(tree, "usr/bin/passwd"))
	opts := ImageOptions{Size: 8 << 20, UUID: "01234567-89ab-4def-8123-456789abcdef", Label: "t", Epoch: time.Unix(1732000000, 0), Log: io.Discard,
		Modes: map[string]uint32{"/usr/bin/passwd": 0o4755}}
	if err := MakeImage(context.Background(), tree, filepath.Join(t.TempDir(), "img"), opts); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(canary.Path); fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSetuid != 0 {
		t.Errorf("the host file's mode became %v", fi.Mode())
	}
	canary.Check(t)
}

// TestAttackIndexCutShort: a signed repository's index cut right after its package list (no
// index-meta.plist, no stage.plist) reads as unsigned. The recipe pins the key, so it is refused,
// and the message says what is missing instead of suggesting allow_unsigned.
func TestAttackIndexCutShort(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	repo := xbpstest.Repo{Dir: t.TempDir(), Arch: "x86_64", Key: key}
	if err := repo.Write([]xbpstest.Package{{Pkgver: "base-sh-1.0_1", Files: map[string]xbpstest.File{"./usr/bin/sh": {Data: []byte("#!\n"), Mode: 0o755}}}}); err != nil {
		t.Fatal(err)
	}
	repodata := filepath.Join(repo.Dir, "x86_64-repodata")
	f, err := os.Open(repodata)
	if err != nil {
		t.Fatal(err)
	}
	dr, _, closer, err := xbps.Decompress(f)
	if err != nil {
		t.Fatal(err)
	}
	var cut bytes.Buffer
	zw, _ := zstd.NewWriter(&cut)
	tw := tar.NewWriter(zw)
	tr := tar.NewReader(dr)
	hdr, err := tr.Next()
	if err != nil || hdr.Name != "index.plist" {
		t.Fatalf("first member %v, %v", hdr, err)
	}
	data, _ := io.ReadAll(tr)
	tw.WriteHeader(hdr)
	tw.Write(data)
	tw.Close()
	zw.Close()
	closer()
	f.Close()
	if err := os.WriteFile(repodata, cut.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Recipe{Name: "cut", Path: "cut.toml", Arch: "x86_64", Packages: []string{"base-sh"}, ImageSize: "64M",
		Repositories: []Repository{{URL: repo.Dir, Keys: []string{repo.Fingerprint()}}}}
	if err := r.validate(); err != nil {
		t.Fatal(err)
	}
	_, err = LoadRepositories(context.Background(), &fetch.Cache{Dir: t.TempDir(), Quiet: true}, r)
	if err == nil || !strings.Contains(err.Error(), "carries no signature data (its repodata holds index.plist;") ||
		!strings.Contains(err.Error(), repo.Fingerprint()) || strings.Contains(err.Error(), "allow_unsigned") {
		t.Fatalf("got %v", err)
	}
}
