package artifact

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
)

// releaseDir writes a small release folder: a kernel tarball, an image, a manifest and SHA256SUMS.
// change edits one thing on the way, to make the second of a pair differ.
func releaseDir(t *testing.T, change string) string {
	t.Helper()
	dir, src := t.TempDir(), t.TempDir()
	epoch := time.Unix(1732000000, 0)
	files := map[string]string{"linux": strings.Repeat("\x7fELF kernel ", 5000), "COPYING": "GPL-2.0"}
	if change == "member content" {
		files["linux"] = strings.Replace(files["linux"], "kernel", "kErnel", 3000)
	}
	var entries []Entry
	for n, body := range files {
		os.WriteFile(filepath.Join(src, n), []byte(body), 0o644)
		entries = append(entries, Entry{Name: n, Source: filepath.Join(src, n)})
	}
	if change == "member mtime" {
		epoch = epoch.Add(time.Hour)
	}
	err := WriteFile(filepath.Join(dir, "linux.tar.xz"), Xz, func(w io.Writer) error { return WriteTar(w, entries, epoch) })
	if err != nil {
		t.Fatal(err)
	}
	if change == "compression" {
		// The same archive with another dictionary size: equal members, other bytes.
		f, _ := os.Create(filepath.Join(dir, "linux.tar.xz"))
		xw, _ := xz.WriterConfig{DictCap: 1 << 16, CheckSum: xz.CRC32}.NewWriter(f)
		WriteTar(xw, entries, epoch)
		xw.Close()
		f.Close()
	}
	img := make([]byte, 64<<10)
	copy(img[1024+0x68:], "uuid-uuid-uuid-1")
	if change == "ext4 write time" {
		img[1024+0x30] = 7
	}
	if change == "ext4 data" {
		img[40000] = 1
	}
	if err := WriteFile(filepath.Join(dir, "rootfs.ext4.zst"), Zstd, func(w io.Writer) error { _, err := w.Write(img); return err }); err != nil {
		t.Fatal(err)
	}
	manifest := "{\n  \"tag\": \"v1-1\"\n}\n"
	if change == "manifest" {
		manifest = "{\n  \"tag\": \"v1-2\"\n}\n"
	}
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o644)
	if change == "extra file" {
		os.WriteFile(filepath.Join(dir, "extra.txt"), []byte("x"), 0o644)
	}
	sums := Sums{}
	if err := sums.Hash(dir, "linux.tar.xz", "rootfs.ext4.zst", "manifest.json"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, SumsName), sums.Bytes(), 0o644)
	return dir
}

func TestCompareDirs(t *testing.T) {
	tests := []struct {
		change             string
		file, member, want string // want: text in the detail
	}{
		{change: ""},
		{change: "member content", file: "linux.tar.xz", member: "linux", want: "content differs at byte"},
		{change: "member mtime", file: "linux.tar.xz", member: "COPYING", want: "mtime"},
		{change: "compression", file: "linux.tar.xz", want: "compressed stream differs"},
		{change: "ext4 write time", file: "rootfs.ext4.zst", want: "s_wtime"},
		{change: "ext4 data", file: "rootfs.ext4.zst", want: "block 39 of 1024 bytes"},
		{change: "manifest", file: "manifest.json", want: `line 2: "\"tag\": \"v1-1\"" vs "\"tag\": \"v1-2\""`},
		{change: "extra file", file: "extra.txt", want: "missing from"},
	}
	for _, tt := range tests {
		t.Run(tt.change, func(t *testing.T) {
			a, b := releaseDir(t, ""), releaseDir(t, tt.change)
			d, err := CompareDirs(a, b)
			if err != nil {
				t.Fatal(err)
			}
			if tt.file == "" {
				if d != nil {
					t.Fatalf("identical folders differ: %s", d)
				}
				return
			}
			if d == nil {
				t.Fatal("no difference found")
			}
			// SHA256SUMS differs too, but the cause is named.
			if d.File != tt.file || d.Member != tt.member || !strings.Contains(d.Detail, tt.want) {
				t.Errorf("got %s; want file %s, member %q, detail with %q", d, tt.file, tt.member, tt.want)
			}
			if tt.want != "missing from" && d.Offset < 0 {
				t.Errorf("no offset: %s", d)
			}
		})
	}
}

func TestHeaderDiff(t *testing.T) {
	base := tar.Header{Name: "a", Mode: 0o644, Uid: 0, Gid: 0, ModTime: time.Unix(1, 0)}
	other := base
	other.Uid, other.Uname = 1000, "builder"
	if got := headerDiff(&base, &other); !strings.Contains(got, "owner") || !strings.Contains(got, "building user") {
		t.Errorf("owner: %q", got)
	}
	if got := headerDiff(&base, &base); got != "" {
		t.Errorf("same headers: %q", got)
	}
}

// TestDiffoscopeNotInstalled: without diffoscope, a difference has no report of it, and nothing
// fails: diffoscope only adds detail to what CompareDirs found.
func TestDiffoscopeNotInstalled(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/diffoscope"); err == nil {
		t.Skip("diffoscope is in /usr/sbin, which LookPath searches whatever PATH says")
	}
	t.Setenv("PATH", t.TempDir())
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	os.WriteFile(a, []byte("one"), 0o644)
	os.WriteFile(b, []byte("two"), 0o644)
	if report := Diffoscope(context.Background(), a, b); report != "" {
		t.Errorf("report %q without diffoscope", report)
	}
}
