package source

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/attacktest"
)

// TestAttackSourceArchive: kernel tarballs whose links are each harmless alone but lead out together,
// in either order. Each is refused before anything is unpacked, and a file beside the tree is
// neither linked in nor changed.
func TestAttackSourceArchive(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"a chain of links climbs out, then a hard link goes through it", []entry{
			{name: "linux/a", typ: tar.TypeDir},
			{name: "linux/a/l1", typ: tar.TypeSymlink, link: ".."},    // linux/a/.. is linux: inside
			{name: "linux/l2", typ: tar.TypeSymlink, link: "a/l1/.."}, // lexically linux/a, really linux/..
			{name: "linux/stolen", typ: tar.TypeLink, link: "linux/l2/canary/secret"},
		}, "leaves the tree"},
		{"the link that makes the chain escape comes last", []entry{
			{name: "linux/x", typ: tar.TypeSymlink, link: "a/y/.."},
			{name: "linux/a/y", typ: tar.TypeSymlink, link: "l1"},
			{name: "linux/a/l1", typ: tar.TypeSymlink, link: ".."},
		}, "leaves the tree"},
		{"a hard link comes before the symlink it names", []entry{
			{name: "linux/h", typ: tar.TypeLink, link: "linux/s"},
			{name: "linux/s", typ: tar.TypeSymlink, link: "Makefile"},
			{name: "linux/Makefile", body: "x"},
		}, "hard link to a symbolic link"},
		{"a hard link through a symlinked folder to a link", []entry{
			{name: "linux/d", typ: tar.TypeDir},
			{name: "linux/d/s", typ: tar.TypeSymlink, link: "../Makefile"},
			{name: "linux/dl", typ: tar.TypeSymlink, link: "d"},
			{name: "linux/Makefile", body: "x"},
			{name: "linux/h", typ: tar.TypeLink, link: "linux/dl/s"},
		}, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			canary := attacktest.NewCanary(t, filepath.Join(dir, "canary"), "secret")
			archive := makeArchive(t, dir, false, tt.entries...)
			dest := filepath.Join(dir, "tree")
			_, err := Unpack(context.Background(), archive, dest)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			canary.Check(t)
			if left, _ := os.ReadDir(dir); len(left) != 2 {
				t.Errorf("left behind after failure: %v", left)
			}
		})
	}
}

// TestAttackPatchTemporaryName: the tarball plants <file>.patching as a symlink to, or a hard link of,
// another file; patching <file> wrote through it. The pristine tree's COPYING stands for a file shared
// by hard link with the cache's unpacked tarball.
func TestAttackPatchTemporaryName(t *testing.T) {
	for _, plant := range []entry{
		{name: "linux/Makefile.patching", typ: tar.TypeSymlink, link: "COPYING"},
		{name: "linux/Makefile.patching", typ: tar.TypeLink, link: "linux/COPYING"},
	} {
		t.Run(string(plant.typ), func(t *testing.T) {
			dir := t.TempDir()
			archive := makeArchive(t, dir, false,
				entry{name: "linux/COPYING", body: "GPL-2.0\n"}, entry{name: "linux/Makefile", body: "VERSION = 6\n"}, plant)
			tree := filepath.Join(dir, "tree")
			if _, err := Unpack(context.Background(), archive, tree); err != nil {
				t.Fatal(err)
			}
			patch := writePatch(t, "--- a/Makefile\n+++ b/Makefile\n@@ -1 +1 @@\n-VERSION = 6\n+VERSION = 7\n")
			if err := Apply(tree, []Patch{{File: patch, Strip: 1}}); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(filepath.Join(tree, "COPYING")); string(got) != "GPL-2.0\n" {
				t.Errorf("COPYING was written through %s: %q", plant.name, got)
			}
			if got, _ := os.ReadFile(filepath.Join(tree, "Makefile")); string(got) != "VERSION = 7\n" {
				t.Errorf("Makefile: %q", got)
			}
		})
	}
}

// TestPatchSymlinks: a git patch that makes a symbolic link makes one (it made a mode-0000 file);
// one whose target leaves the tree, or goes through a link of the tree, is refused.
func TestPatchSymlinks(t *testing.T) {
	link := func(name, target string) string {
		return "diff --git a/" + name + " b/" + name + "\nnew file mode 120000\nindex 0000000..1111111\n--- /dev/null\n+++ b/" + name +
			"\n@@ -0,0 +1 @@\n+" + target + "\n\\ No newline at end of file\n"
	}
	tests := []struct {
		name, patch, want string
	}{
		{"inside", link("arch/um/include", "../../include"), ""},
		{"climbs out", link("up", "../../etc"), "leaves the tree"},
		{"absolute", link("abs", "/etc/passwd"), "only relative links"},
		{"through a link of the tree", link("sub/x", "l1/.."), "goes through the symbolic link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			archive := makeArchive(t, dir, false, entry{name: "linux/Makefile", body: "x\n"}, entry{name: "linux/include/a.h", body: "x\n"},
				entry{name: "linux/arch/um/Kconfig", body: "x\n"}, entry{name: "linux/sub/l1", typ: tar.TypeSymlink, link: ".."})
			tree := filepath.Join(dir, "tree")
			if _, err := Unpack(context.Background(), archive, tree); err != nil {
				t.Fatal(err)
			}
			err := Apply(tree, []Patch{{File: writePatch(t, tt.patch), Strip: 1}})
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.Readlink(filepath.Join(tree, "arch/um/include")); err != nil || got != "../../include" {
				t.Errorf("link: %q %v", got, err)
			}
		})
	}
}

func writePatch(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "0001.patch")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAttackTrailingData: an xz tarball with data after the xz stream, or after the tar inside it, was
// unpacked by the Go decoder (the host's xz refuses it). Both decoders refuse it now, and a plain tar
// with data after its end too.
func TestAttackTrailingData(t *testing.T) {
	for _, compress := range []bool{true, false} {
		for dname, d := range decoders {
			t.Run(fmt.Sprintf("xz=%v/%s", compress, dname), func(t *testing.T) {
				dir := t.TempDir()
				archive := makeArchive(t, dir, compress, entry{name: "linux/Makefile", body: "x"})
				f, err := os.OpenFile(archive, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString("GARBAGE AFTER THE ARCHIVE")
				f.Close()
				dest := filepath.Join(dir, "out", "tree")
				if _, err := UnpackWith(context.Background(), archive, dest, d); err == nil {
					t.Fatal("accepted")
				}
				if left, _ := os.ReadDir(filepath.Join(dir, "out")); len(left) != 0 {
					t.Errorf("left behind: %v", left)
				}
			})
		}
	}
}

// FuzzReadSeries: whatever the series file says, no patch is read from outside the patches folder,
// through a name or through a link in it.
func FuzzReadSeries(f *testing.F) {
	f.Add("a.patch\n")
	f.Add("out.patch -p1\n")
	f.Add("../canary\n")
	f.Add("sub/../../canary # comment\n")
	f.Add("/etc/passwd\n")
	f.Fuzz(func(t *testing.T, series string) {
		dir := t.TempDir()
		canary := attacktest.NewCanary(t, dir, "canary")
		pdir := filepath.Join(dir, "patches")
		os.MkdirAll(filepath.Join(pdir, "sub"), 0o755)
		os.WriteFile(filepath.Join(pdir, "a.patch"), []byte("--- a/x\n+++ b/x\n"), 0o644)
		os.Symlink("../canary", filepath.Join(pdir, "out.patch"))
		os.Symlink("../../canary", filepath.Join(pdir, "sub", "deep.patch"))
		os.WriteFile(filepath.Join(pdir, "series"), []byte(series), 0o644)
		patches, err := ReadSeries(pdir)
		if err != nil {
			return
		}
		sum := sha256.Sum256(canary.Data)
		for _, p := range patches {
			if p.SHA256 == hex.EncodeToString(sum[:]) {
				t.Fatalf("series %q read the canary through %s", series, p.File)
			}
		}
	})
}
