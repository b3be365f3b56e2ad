package source

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func makeArchive(t testing.TB, dir string, compress bool, entries ...entry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 11, 17, 12, 0, 0, 0, time.UTC)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link, ModTime: mtime, Size: int64(len(e.body))}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if typ == tar.TypeXGlobalHeader {
			hdr = &tar.Header{Name: e.name, Typeflag: typ, PAXRecords: map[string]string{"comment": "0123abcd"}}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "linux.tar")
	data := buf.Bytes()
	if compress {
		var xbuf bytes.Buffer
		w, err := xz.NewWriter(&xbuf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Close()
		data = xbuf.Bytes()
		name += ".xz"
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// decoders are the xz decoders every unpack test runs with.
var decoders = map[string]Decoder{"go": DecoderGo, "host-xz": DecoderHost}

func TestUnpack(t *testing.T) {
	for name, d := range decoders {
		t.Run(name, func(t *testing.T) { testUnpack(t, d) })
	}
}

func testUnpack(t *testing.T, d Decoder) {
	dir := t.TempDir()
	archive := makeArchive(t, dir, true,
		entry{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
		entry{name: "linux-6.12.1/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "linux-6.12.1/Makefile", body: "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 1\nEXTRAVERSION =\n"},
		entry{name: "linux-6.12.1/scripts/run.sh", body: "#!/bin/sh\n", mode: 0o755},
		entry{name: "linux-6.12.1/arch/um/dts", typ: tar.TypeSymlink, link: "../../scripts"},
		entry{name: "linux-6.12.1/COPYING-hard", typ: tar.TypeLink, link: "linux-6.12.1/Makefile"},
	)
	dest := filepath.Join(dir, "tree")
	stats, err := UnpackWith(context.Background(), archive, dest, d)
	if err != nil {
		t.Fatal(err)
	}
	if stats.TopDir != "linux-6.12.1" || stats.Files != 2 {
		t.Errorf("stats = %+v", stats)
	}
	checks := []struct {
		path string
		mode os.FileMode
		link string
	}{
		{"Makefile", 0o644, ""},
		{"scripts/run.sh", 0o755, ""},
		{"arch/um/dts", os.ModeSymlink, "../../scripts"},
		{"COPYING-hard", 0o644, ""},
	}
	for _, c := range checks {
		fi, err := os.Lstat(filepath.Join(dest, c.path))
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if c.link != "" {
			if got, _ := os.Readlink(filepath.Join(dest, c.path)); fi.Mode()&os.ModeSymlink == 0 || got != c.link {
				t.Errorf("%s: want symlink to %s, got %v %q", c.path, c.link, fi.Mode(), got)
			}
			continue
		}
		if fi.Mode().Perm() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode().Perm(), c.mode)
		}
		if !fi.ModTime().Equal(time.Date(2024, 11, 17, 12, 0, 0, 0, time.UTC)) {
			t.Errorf("%s: mtime %v not kept", c.path, fi.ModTime())
		}
	}
	if v, err := TreeVersion(dest); err != nil || v != "6.12.1" {
		t.Errorf("TreeVersion = %q, %v", v, err)
	}
	if _, err := Unpack(context.Background(), archive, dest); err == nil {
		t.Error("unpacking over an existing tree should fail")
	}
}

func TestUnpackRefusesHostileArchives(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"dot-dot", []entry{{name: "linux/Makefile"}, {name: "linux/../../evil", body: "x"}}, "path contains .."},
		{"absolute", []entry{{name: "/etc/evil", body: "x"}}, "absolute path"},
		{"second top dir", []entry{{name: "linux/Makefile"}, {name: "other/file"}}, "outside the archive's top-level directory"},
		{"absolute symlink", []entry{{name: "linux/etc", typ: tar.TypeSymlink, link: "/etc"}}, "absolute path"},
		{"escaping symlink", []entry{{name: "linux/a/up", typ: tar.TypeSymlink, link: "../../.."}}, "leaves the tree"},
		{"write through symlink", []entry{
			{name: "linux/inside", typ: tar.TypeDir},
			{name: "linux/sub", typ: tar.TypeSymlink, link: "inside"},
			{name: "linux/sub/file", body: "x"},
		}, "parent sub is a symbolic link"},
		{"replace symlink", []entry{
			{name: "linux/Makefile", body: "x"},
			{name: "linux/l", typ: tar.TypeSymlink, link: "Makefile"},
			{name: "linux/l", body: "y"},
		}, "replace a symbolic link"},
		{"hard link outside", []entry{{name: "linux/h", typ: tar.TypeLink, link: "../etc/passwd"}}, "path contains .."},
		{"device node", []entry{{name: "linux/dev", typ: tar.TypeChar}}, "not allowed"},
		{"empty", nil, "archive is empty"},
	}
	for _, tt := range tests {
		for dname, d := range decoders {
			t.Run(tt.name+"/"+dname, func(t *testing.T) {
				dir := t.TempDir()
				archive := makeArchive(t, dir, true, tt.entries...)
				dest := filepath.Join(dir, "out", "tree")
				_, err := UnpackWith(context.Background(), archive, dest, d)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				left, _ := os.ReadDir(filepath.Join(dir, "out"))
				if len(left) != 0 {
					t.Errorf("left behind after failure: %v", left)
				}
			})
		}
	}
}

func TestUnpackCancelled(t *testing.T) {
	dir := t.TempDir()
	archive := makeArchive(t, dir, false, entry{name: "linux/Makefile", body: "x"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dest := filepath.Join(dir, "tree")
	if _, err := Unpack(ctx, archive, dest); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestUnpackTruncatedArchive(t *testing.T) {
	for name, d := range decoders {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			// Incompressible content, so that half the file is half the tar.
			body := make([]byte, 200000)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range body {
				body[i] = byte(rng.Uint32())
			}
			archive := makeArchive(t, dir, true, entry{name: "linux/Makefile", body: "x"}, entry{name: "linux/blob", body: string(body)})
			data, _ := os.ReadFile(archive)
			os.WriteFile(archive, data[:len(data)/2], 0o644)
			if _, err := UnpackWith(context.Background(), archive, filepath.Join(dir, "tree"), d); err == nil {
				t.Fatal("a truncated archive unpacked without error")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

// FuzzUnpack feeds arbitrary tar streams to the extractor: whatever it accepts must land inside dest.
func FuzzUnpack(f *testing.F) {
	dir := f.TempDir()
	for _, entries := range [][]entry{
		{{name: "linux/Makefile", body: "x"}, {name: "linux/a/b", typ: tar.TypeSymlink, link: "../Makefile"}},
		{{name: "linux/../x", body: "x"}},
		{{name: "l/h", typ: tar.TypeLink, link: "l/x"}, {name: "l/x", body: "y"}},
		{{name: "l/a/l1", typ: tar.TypeSymlink, link: ".."}, {name: "l/l2", typ: tar.TypeSymlink, link: "a/l1/.."}},
	} {
		data, _ := os.ReadFile(makeArchive(f, dir, false, entries...))
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		archive := filepath.Join(root, "in.tar")
		os.WriteFile(archive, data, 0o644)
		dest := filepath.Join(root, "box", "tree")
		if _, err := Unpack(context.Background(), archive, dest); err != nil {
			return
		}
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if p != root && p != archive && !strings.HasPrefix(p, filepath.Join(root, "box")) {
				t.Fatalf("wrote outside dest: %s", p)
			}
			// Every link of an accepted tree leads inside it, whatever links it goes through.
			if d != nil && d.Type()&os.ModeSymlink != 0 {
				if real, err := filepath.EvalSymlinks(p); err == nil && real != dest && !strings.HasPrefix(real, dest+"/") {
					t.Fatalf("%s leads to %s, outside the tree", p, real)
				}
			}
			return nil
		})
	})
}

// TestUnpackRefusesOversizedEntries guards against archives that would fill the disk: a header that
// claims more than the per-file limit is refused before any of its data is read.
func TestUnpackRefusesOversizedEntries(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "linux/Makefile", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
	tw.Write([]byte("x"))
	tw.WriteHeader(&tar.Header{Name: "linux/huge", Typeflag: tar.TypeReg, Mode: 0o644, Size: maxFileSize + 1})
	tw.Flush() // the data never comes: the header alone must be refused
	dir := t.TempDir()
	archive := filepath.Join(dir, "huge.tar")
	os.WriteFile(archive, buf.Bytes(), 0o644)
	_, err := Unpack(context.Background(), archive, filepath.Join(dir, "out", "tree"))
	if err == nil || !strings.Contains(err.Error(), "past the limits") {
		t.Fatalf("err = %v, want the size limit", err)
	}
}

// TestUnpackRefusesSparseFiles: a sparse entry's holes cost nothing in the archive, so a few bytes
// could expand to fill the disk. GNU tar makes a real one (go's archive/tar cannot write them).
func TestUnpackRefusesSparseFiles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "linux")
	os.MkdirAll(src, 0o755)
	holes, err := os.Create(filepath.Join(src, "holes"))
	if err != nil {
		t.Fatal(err)
	}
	holes.Truncate(64 << 20)
	holes.WriteAt([]byte("end"), 64<<20)
	holes.Close()
	for _, format := range []string{"pax", "gnu"} {
		t.Run(format, func(t *testing.T) {
			archive := filepath.Join(dir, format+".tar")
			out, err := exec.Command("tar", "--sparse", "--format="+format, "-C", dir, "-cf", archive, "linux").CombinedOutput()
			if err != nil {
				t.Fatalf("GNU tar: %v\n%s", err, out)
			}
			_, err = Unpack(context.Background(), archive, filepath.Join(dir, format, "tree"))
			if err == nil || !strings.Contains(err.Error(), "sparse") {
				t.Fatalf("err = %v, want sparse files refused", err)
			}
		})
	}
}
