package pipeline

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/rootfs"
	"github.com/simple-uml/simple-uml/build/xbps"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

// userTemplate writes a template of a small package with a script, a link, a conf file and an
// INSTALL script into a new folder, and returns the template's path.
func userTemplate(t *testing.T, name, extra string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"payload/usr/bin/" + name:       "#!/bin/sh\necho " + name + "\n",
		"payload/etc/" + name + ".conf": "greeting=hi\n",
		"INSTALL":                       "#!/bin/sh\ncase \"$1\" in post) echo installed ;; esac\n",
		name + ".toml": fmt.Sprintf("name = %q\nversion = \"1.0\"\nrevision = 1\narch = \"x86_64\"\nshort_desc = \"a package of one's own\"\n"+
			"conf_files = [\"/etc/%s.conf\"]\ninstall = \"INSTALL\"\npayload = \"payload\"\n%s", name, name, extra),
	}
	for p, text := range files {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, p), []byte(text), 0o755))
	}
	must(t, os.Symlink(name, filepath.Join(dir, "payload/usr/bin/"+name+"-link")))
	return filepath.Join(dir, name+".toml")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPkgRepoRootfs: what mage pkg and mage repo make, the root filesystem stages read as any
// signed repository, from a folder and over HTTP: the index, the key the recipe pins, each package
// checked against its .sig2, unpacked, and xbps's database written.
func TestPkgRepoRootfs(t *testing.T) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.Paths.Dist = t.TempDir()
	repoDir := t.TempDir()
	env := map[string]string{"SOURCE_DATE_EPOCH": "1704164645"}
	var out bytes.Buffer
	greeter := userTemplate(t, "greeter", "")
	// The INSTALL scripts want a shell in the image.
	must(t, os.MkdirAll(filepath.Join(filepath.Dir(greeter), "payload/bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(filepath.Dir(greeter), "payload/bin/sh"), []byte("a shell\n"), 0o755))
	for _, tpl := range []string{userTemplate(t, "hello", `run_depends = ["greeter>=0"]`), greeter} {
		if _, err := Pkg(ctx, cfg, func(k string) string { return env[k] }, PkgRequest{Template: tpl, Out: repoDir}, &out); err != nil {
			t.Fatal(err)
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	must(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	repo, err := Repo(ctx, cfg, RepoRequest{Dir: repoDir, Key: keyFile, SignedBy: "Me <me@example.invalid>"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	fp := xbps.Fingerprint(&key.PublicKey)
	if repo.Fingerprint != fp || !strings.Contains(out.String(), fmt.Sprintf("keys = [%q]", fp)) || !strings.Contains(out.String(), repoDir+"/x86_64-repodata: 2 packages") {
		t.Errorf("fingerprint %s, printed:\n%s", repo.Fingerprint, out.String())
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	defer srv.Close()
	for name, url := range map[string]string{"folder": repoDir, "http": srv.URL} {
		t.Run(name, func(t *testing.T) {
			recipe, cache, repos, pkgs := resolveRecipe(t, url, fp)
			fetched, err := rootfs.Fetch(ctx, cache, repos, pkgs, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(fetched) != 2 || fetched[0].Verified != "sig2" || fetched[1].Verified != "sig2" {
				t.Fatalf("fetched %+v", fetched)
			}
			tree := t.TempDir()
			st, err := rootfs.Stage(ctx, tree, recipe, repos, fetched)
			if err != nil {
				t.Fatal(err)
			}
			db := xbpstest.CheckDB(t, tree)
			for _, name := range []string{"hello", "greeter"} {
				if e, _ := db[name].(map[string]any); e == nil || e["pkgver"] != name+"-1.0_1" {
					t.Errorf("pkgdb: %s is %v", name, db[name])
				}
			}
			if l, err := os.Readlink(filepath.Join(tree, "usr/bin/hello-link")); err != nil || l != "hello" {
				t.Errorf("the link: %q %v", l, err)
			}
			if len(st.Scripts) != 2 {
				t.Errorf("INSTALL scripts to run: %+v", st.Scripts)
			}
		})
	}

	// A signature that does not match its package stops the build, naming it.
	sig := filepath.Join(repoDir, "hello-1.0_1.x86_64.xbps.sig2")
	data, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	data[10] ^= 1
	must(t, os.WriteFile(sig, data, 0o644))
	_, cache, repos, pkgs := resolveRecipe(t, srv.URL, fp)
	if _, err := rootfs.Fetch(ctx, cache, repos, pkgs, 2); !errors.Is(err, xbps.ErrBadSignature) || !strings.Contains(err.Error(), "hello-1.0_1") {
		t.Errorf("a bad signature: %v", err)
	}
}

// loadRecipe writes and reads a recipe of the user's repository, as a user would.
func loadRecipe(t *testing.T, url, fp string) *rootfs.Recipe {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf("arch = \"x86_64\"\npackages = [\"hello\"]\nimage_size = \"64M\"\n\n[[repositories]]\nurl = %q\nkeys = [%q]\n", url, fp)
	must(t, os.WriteFile(filepath.Join(dir, "mine.toml"), []byte(text), 0o644))
	r, err := rootfs.LoadRecipe(dir, "mine")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPkgRepoErrors(t *testing.T) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.Paths.Dist = t.TempDir()
	noEnv := func(string) string { return "" }
	var out bytes.Buffer
	// No date in the template and no SOURCE_DATE_EPOCH: nothing is written.
	if _, err := Pkg(ctx, cfg, noEnv, PkgRequest{Template: userTemplate(t, "hello", "")}, &out); err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Errorf("no date: %v", err)
	}
	if entries, _ := os.ReadDir(cfg.Paths.Dist); len(entries) > 0 {
		t.Errorf("wrote %v", entries)
	}
	bad := func(string) string { return "yesterday" }
	if _, err := Pkg(ctx, cfg, bad, PkgRequest{Template: userTemplate(t, "hello", "")}, &out); err == nil || !strings.Contains(err.Error(), "seconds since 1970") {
		t.Errorf("a bad SOURCE_DATE_EPOCH: %v", err)
	}
	if _, err := Pkg(ctx, cfg, noEnv, PkgRequest{Template: filepath.Join(t.TempDir(), "none.toml")}, &out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing template: %v", err)
	}
	// A key that is not RSA, and a key without a signer's name.
	dir := t.TempDir()
	if _, err := Pkg(ctx, cfg, noEnv, PkgRequest{Template: userTemplate(t, "hello", "date = 2024-01-02T03:04:05Z\n"), Out: dir}, &out); err != nil {
		t.Fatal(err)
	}
	notRSA := filepath.Join(t.TempDir(), "ed25519.pem")
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edDER, err := x509.MarshalPKCS8PrivateKey(ed)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(notRSA, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER}), 0o600))
	if _, err := Repo(ctx, cfg, RepoRequest{Dir: dir, Key: notRSA, SignedBy: "me"}, &out); err == nil || !strings.Contains(err.Error(), "RSA only") || !strings.Contains(err.Error(), notRSA) {
		t.Errorf("an Ed25519 key: %v", err)
	}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaFile := filepath.Join(t.TempDir(), "rsa.pem")
	must(t, os.WriteFile(rsaFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600))
	if _, err := Repo(ctx, cfg, RepoRequest{Dir: dir, Key: rsaFile}, &out); err == nil || !strings.Contains(err.Error(), "-signedBy=") {
		t.Errorf("no signer: %v", err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*.sig2")); len(matches) > 0 {
		t.Errorf("signed without a signer's name: %v", matches)
	}
}

// resolveRecipe loads a recipe of the repository at url with its key and resolves it, as rootfs's
// first steps do, with a cache of the test's own.
func resolveRecipe(t *testing.T, url, fingerprint string) (*rootfs.Recipe, *fetch.Cache, []*rootfs.Repo, []*xbps.Resolved) {
	t.Helper()
	recipe := loadRecipe(t, url, fingerprint)
	cache := &fetch.Cache{Dir: t.TempDir(), Quiet: true}
	repos, err := rootfs.LoadRepositories(context.Background(), cache, recipe)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := rootfs.Resolve(repos, recipe)
	if err != nil {
		t.Fatal(err)
	}
	return recipe, cache, repos, pkgs
}
