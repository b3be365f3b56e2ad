package userpkg

import (
	"archive/tar"
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/simple-uml/simple-uml/build/xbps"
	"github.com/simple-uml/simple-uml/build/xbps/proplib"
)

// The golden files were made by the real xbps 0.60.7 from the inputs in testdata (see
// testdata/golden/README.md and make-golden.sh, which the tests here follow step by step).
var (
	goldenRepo = filepath.Join("testdata", "golden", "repo")
	goldenKey  = filepath.Join("testdata", "golden", "test-only-key.pem")
	// goldenSigner is what make-golden.sh gave xbps-rindex --signedby.
	goldenSigner = "simple-uml golden tests (TEST ONLY) <test@example.invalid>"
	// goldenFingerprint is the key's fingerprint as xbps-install showed it on importing the key.
	goldenFingerprint = "b8:75:6e:f9:04:4b:38:0d:a9:4b:2d:51:09:34:00:0f"
)

// copyInput copies a template's folder (testdata/<name>) into a new folder and prepares it as
// make-golden.sh's prepare does: modes that depend on neither git nor the umask, and for hello a hard
// link and an empty folder, which git cannot carry. Times need no setting: the template's date is
// every entry's time.
func copyInput(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("testdata", name))); err != nil {
		t.Fatal(err)
	}
	payload := filepath.Join(dst, "payload")
	err := filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir():
			return os.Chmod(p, 0o755)
		case d.Type().IsRegular():
			return os.Chmod(p, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if name == "hello" {
		for _, f := range []string{"payload/usr/bin/hello", "INSTALL", "REMOVE"} {
			must(t, os.Chmod(filepath.Join(dst, f), 0o755))
		}
		must(t, os.Chmod(filepath.Join(payload, "etc/hello.conf"), 0o640))
		must(t, os.Link(filepath.Join(payload, "usr/bin/hello"), filepath.Join(payload, "usr/bin/hello-again")))
		must(t, os.MkdirAll(filepath.Join(payload, "var/lib/hello"), 0o755))
	}
	return dst
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// member is one archive entry as a reader sees it. The header blocks themselves differ: libarchive
// writes ustar numbers as "000644 \x00", Go as "0000644\x00" (the same values, which every reader,
// xbps's libarchive among them, reads alike); neither writes pax records here.
type member struct {
	Name, Linkname, Uname, Gname string
	Typeflag                     byte
	Mode, Size, ModTime          int64
	Uid, Gid                     int
	PAX                          map[string]string
	Data                         []byte
}

// readArchive decompresses an xbps archive (package or repodata) and returns its entries.
func readArchive(t *testing.T, path string) []member {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, closer, err := xbps.Decompress(f)
	if err != nil {
		t.Fatal(err)
	}
	defer closer()
	var out []member
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, member{h.Name, h.Linkname, h.Uname, h.Gname, h.Typeflag, h.Mode, h.Size, h.ModTime.Unix(), h.Uid, h.Gid, h.PAXRecords, data})
	}
}

// compareArchives wants the same entries, in the same order, with the same contents: of packages,
// the plists byte for byte. The compressed files differ (klauspost/compress is not libzstd).
func compareArchives(t *testing.T, got, want string) {
	t.Helper()
	g, w := readArchive(t, got), readArchive(t, want)
	for i := range max(len(g), len(w)) {
		var gm, wm member
		if i < len(g) {
			gm = g[i]
		}
		if i < len(w) {
			wm = w[i]
		}
		if !bytes.Equal(gm.Data, wm.Data) {
			t.Errorf("%s: member %d %s holds\n%s\nxbps wrote %s holding\n%s", got, i, gm.Name, gm.Data, wm.Name, wm.Data)
		}
		gm.Data, wm.Data = nil, nil
		if !reflect.DeepEqual(gm, wm) {
			t.Errorf("%s: member %d:\n got %+v\nxbps %+v", got, i, gm, wm)
		}
	}
}

// goldenInputs are the packages make-golden.sh makes: the template, and the version it gives.
var goldenInputs = []struct{ dir, template, version, file string }{
	{"hello", "hello.toml", "1.2.3", "hello-1.2.3_1.x86_64.xbps"},
	{"hello", "hello.toml", "1.2.2", "hello-1.2.2_1.x86_64.xbps"},
	{"hello-doc", "hello-doc.toml", "1.0", "hello-doc-1.0_1.noarch.xbps"},
}

// buildGolden builds make-golden.sh's packages from the same inputs into out.
func buildGolden(t *testing.T, out string) []*Built {
	t.Helper()
	var built []*Built
	for _, in := range goldenInputs {
		tpl, err := LoadTemplate(filepath.Join(copyInput(t, in.dir), in.template))
		if err != nil {
			t.Fatal(err)
		}
		tpl.Version = in.version
		b, err := Build(tpl, BuildOptions{OutDir: out})
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(b.Path) != in.file {
			t.Fatalf("wrote %s, xbps-create %s", b.Path, in.file)
		}
		built = append(built, b)
	}
	return built
}

// TestGoldenPackages: what Build writes holds what xbps-create 0.60.7 wrote for the same input:
// the same props.plist and files.plist bytes, the same entries in the same order with the same
// modes, owners, times, link targets and contents.
func TestGoldenPackages(t *testing.T) {
	out := t.TempDir()
	for _, b := range buildGolden(t, out) {
		compareArchives(t, b.Path, filepath.Join(goldenRepo, filepath.Base(b.Path)))
	}
	// The same inputs again make the same bytes, zstd stream and all.
	again := buildGolden(t, t.TempDir())
	for i, b := range buildGolden(t, out) {
		if b.SHA256 != again[i].SHA256 {
			t.Errorf("%s: %s, then %s", b.Pkgver, b.SHA256, again[i].SHA256)
		}
	}
}

func readKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	pemText, err := os.ReadFile(goldenKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := xbps.ParsePrivateKey(pemText)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestGoldenSignatures: a package's .sig2 is the bytes xbps-rindex --sign-pkg wrote for it (RSA
// PKCS#1 v1.5 is deterministic), from the PKCS#1 key file and from the same key as PKCS#8.
func TestGoldenSignatures(t *testing.T) {
	key := readKey(t)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := xbps.ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range goldenInputs {
		data, err := os.ReadFile(filepath.Join(goldenRepo, in.file))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join(goldenRepo, in.file+".sig2"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		for _, k := range []*rsa.PrivateKey{key, pkcs8} {
			if sig, err := xbps.SignPackage(k, sum[:]); err != nil || !bytes.Equal(sig, want) {
				t.Errorf("%s: signature differs from xbps-rindex's (%v)", in.file, err)
			}
		}
	}
}

// TestGoldenRepository: IndexFolder over xbps-create's own packages writes what xbps-rindex -a,
// --sign and --sign-pkg wrote: each .sig2 and every repodata member byte for byte.
func TestGoldenRepository(t *testing.T) {
	dir := t.TempDir()
	for _, in := range goldenInputs {
		data, err := os.ReadFile(filepath.Join(goldenRepo, in.file))
		if err != nil {
			t.Fatal(err)
		}
		must(t, os.WriteFile(filepath.Join(dir, in.file), data, 0o644))
	}
	r, err := IndexFolder(dir, RepoOptions{Key: readKey(t), SignedBy: goldenSigner})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Indexes) != 1 || r.Indexes[0].Arch != "x86_64" || !reflect.DeepEqual(r.Skipped, []string{"hello-1.2.2_1.x86_64.xbps"}) {
		t.Errorf("indexes %v, skipped %v; xbps-rindex kept hello-1.2.3_1 and hello-doc-1.0_1 in x86_64-repodata", r.Indexes, r.Skipped)
	}
	if r.Fingerprint != goldenFingerprint {
		t.Errorf("fingerprint %s, xbps's %s", r.Fingerprint, goldenFingerprint)
	}
	for _, in := range goldenInputs {
		got, _ := os.ReadFile(filepath.Join(dir, in.file+".sig2"))
		want, _ := os.ReadFile(filepath.Join(goldenRepo, in.file+".sig2"))
		if len(want) == 0 || !bytes.Equal(got, want) {
			t.Errorf("%s.sig2 differs from xbps-rindex's", in.file)
		}
	}
	compareArchives(t, filepath.Join(dir, "x86_64-repodata"), filepath.Join(goldenRepo, "x86_64-repodata"))
}

// TestOwnRepository: the index of Build's own packages holds what xbps-rindex wrote for xbps-create's,
// but for the two keys that describe the files themselves, which are this repository's files'.
func TestOwnRepository(t *testing.T) {
	dir := t.TempDir()
	built := buildGolden(t, dir)
	if _, err := IndexFolder(dir, RepoOptions{Key: readKey(t), SignedBy: goldenSigner}); err != nil {
		t.Fatal(err)
	}
	got, want := indexPlist(t, filepath.Join(dir, "x86_64-repodata")), indexPlist(t, filepath.Join(goldenRepo, "x86_64-repodata"))
	if len(got) != len(want) {
		t.Fatalf("index holds %d packages, xbps's %d", len(got), len(want))
	}
	files := map[string]*Built{}
	for _, b := range built {
		files[b.Pkgver] = b
	}
	for name, w := range want {
		g, _ := got[name].(map[string]any)
		we := w.(map[string]any)
		b := files[we["pkgver"].(string)]
		if b == nil || g["filename-sha256"] != b.SHA256 || g["filename-size"] != b.Size {
			t.Errorf("%s: filename-sha256 %v, filename-size %v; the file is %+v", name, g["filename-sha256"], g["filename-size"], b)
		}
		for _, k := range []string{"filename-sha256", "filename-size"} {
			delete(g, k)
			delete(we, k)
		}
		if !reflect.DeepEqual(g, we) {
			t.Errorf("%s:\n got %v\nxbps %v", name, g, we)
		}
	}
	// And the project's reader takes it as any signed repository.
	f, err := os.Open(filepath.Join(dir, "x86_64-repodata"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := xbps.ReadRepodata(f)
	if err != nil || !rd.Signed() || rd.Meta.SignatureBy != goldenSigner || len(rd.Index) != 2 {
		t.Fatalf("read back: %+v %v", rd, err)
	}
}

func indexPlist(t *testing.T, repodata string) map[string]any {
	t.Helper()
	for _, m := range readArchive(t, repodata) {
		if m.Name == "index.plist" {
			v, err := proplib.Unmarshal(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			return v.(map[string]any)
		}
	}
	t.Fatalf("%s has no index.plist", repodata)
	return nil
}
