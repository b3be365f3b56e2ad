package artifact

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func entriesOf(t *testing.T, dir string, contents map[string]string) []Entry {
	t.Helper()
	var out []Entry
	for name, body := range contents {
		p := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
		out = append(out, Entry{Name: name, Source: p})
	}
	return out
}

// TestArchivesAreReproducible writes the same entries twice, from different folders, in different
// orders and at different file times: the compressed bytes must be equal.
func TestArchivesAreReproducible(t *testing.T) {
	epoch := time.Unix(1731500000, 0)
	contents := map[string]string{"linux": strings.Repeat("kernel ", 1000), "linux.config": "CONFIG_X=y\n", "dir/System.map": "0 T start\n"}
	for _, c := range []Compression{Xz, Zstd} {
		var outs [][]byte
		for round := 0; round < 2; round++ {
			dir := t.TempDir()
			entries := entriesOf(t, dir, contents)
			if round == 1 {
				for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
					entries[i], entries[j] = entries[j], entries[i]
				}
				for _, e := range entries {
					os.Chtimes(e.Source, time.Now(), time.Now().Add(time.Hour))
				}
			}
			out := filepath.Join(dir, "a.tar")
			if err := WriteFile(out, c, func(w io.Writer) error { return WriteTar(w, entries, epoch) }); err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(out)
			outs = append(outs, data)
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Fatalf("%s: two writes of the same entries differ", c)
		}
		hdrs := readTar(t, outs[0], c)
		names := []string{}
		for _, h := range hdrs {
			names = append(names, h.Name)
			if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(epoch) || h.Mode != 0o640 {
				t.Errorf("%s: header %+v", c, h)
			}
		}
		if strings.Join(names, " ") != "dir/System.map linux linux.config" {
			t.Errorf("%s: entries %v, want sorted", c, names)
		}
	}
}

func readTar(t *testing.T, data []byte, c Compression) []*tar.Header {
	t.Helper()
	var r io.Reader
	switch c {
	case Xz:
		xr, err := xz.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		r = xr
	case Zstd:
		zr, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	var out []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
}

func TestWriteTarRefuses(t *testing.T) {
	dir := t.TempDir()
	e := entriesOf(t, dir, map[string]string{"a": "1"})
	if err := WriteTar(io.Discard, append(e, e...), time.Unix(0, 0)); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate entry: %v", err)
	}
	if err := WriteTar(io.Discard, []Entry{{Name: "d", Source: dir}}, time.Unix(0, 0)); err == nil {
		t.Error("a folder was archived")
	}
	// A failed write leaves no file behind.
	out := filepath.Join(dir, "x.tar.xz")
	if err := WriteFile(out, Xz, func(w io.Writer) error {
		return WriteTar(w, []Entry{{Name: "n", Source: "/nonexistent"}}, time.Unix(0, 0))
	}); err == nil {
		t.Fatal("missing source accepted")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*x.tar.xz*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestSums writes SHA256SUMS, checks it with the real sha256sum, and catches a flipped byte.
func TestSums(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.tar.xz"), []byte("bbb"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.img.zst"), []byte("aaa"), 0o644)
	s := Sums{}
	if err := s.Hash(dir, "b.tar.xz", "a.img.zst"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, SumsName), s.Bytes(), 0o644)
	if !strings.HasPrefix(string(s.Bytes()), "9834876dcfb05cb167a5c24953eba58c4ac89b1adf57f28f2f9d09af107ee8f0  a.img.zst\n") {
		t.Errorf("SHA256SUMS:\n%s", s.Bytes())
	}
	if path, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(path, "-c", SumsName)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sha256sum -c: %v\n%s", err, out)
		}
	}
	if _, problems, err := VerifyDir(dir); err != nil || len(problems) != 0 {
		t.Fatalf("clean release: %v %v", problems, err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "b.tar.xz"))
	data[1] ^= 1
	os.WriteFile(filepath.Join(dir, "b.tar.xz"), data, 0o644)
	os.Remove(filepath.Join(dir, "a.img.zst"))
	_, problems, err := VerifyDir(dir)
	if err != nil || len(problems) != 2 || !strings.Contains(problems[0], "a.img.zst") || !strings.Contains(problems[1], "differs") {
		t.Fatalf("tampered release: %v %v", problems, err)
	}
}

func FuzzParseSums(f *testing.F) {
	f.Add([]byte(strings.Repeat("ab", 32) + "  a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSums(data)
		if err != nil {
			return
		}
		back, err := ParseSums(s.Bytes())
		if err != nil || len(back) != len(s) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// TestVerifyDirNamesStrayFiles: a file SHA256SUMS does not list would be published with the release.
func TestVerifyDirNamesStrayFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a"), 0o644)
	sums := Sums{}
	if err := sums.Hash(dir, "a.txt"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, SumsName), sums.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "notes copy.txt"), []byte("b"), 0o644)
	_, problems, err := VerifyDir(dir)
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "notes copy.txt: not listed in SHA256SUMS") {
		t.Fatalf("problems %q, %v", problems, err)
	}
}
