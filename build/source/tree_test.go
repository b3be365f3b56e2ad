package source

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTreeFollowsPatchChanges changes the patch series under one working tree and checks that it
// stays at one path, holds exactly tarball + series, and that only files whose content changed get a
// new modification time: what lets make recompile only what a changed patch reaches.
func TestTreeFollowsPatchChanges(t *testing.T) {
	const version = "6.12.999"
	// Empty files, given content by the patches; the Makefile says the version.
	top := "linux-" + version + "/"
	tarball := makeArchive(t, t.TempDir(), true,
		entry{name: top, typ: tar.TypeDir, mode: 0o755},
		entry{name: top + "Makefile", body: "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 999\nEXTRAVERSION =\n"},
		entry{name: top + "a.c"}, entry{name: top + "b.c"}, entry{name: top + "c.c"})
	sum := sha256.Sum256(readFile(t, tarball))
	cache := t.TempDir()
	key := hex.EncodeToString(sum[:])
	buildDir := filepath.Join(cache, "build")
	add := func(file, line string) string { // a patch giving an empty file one line
		return "--- a/" + file + "\n+++ b/" + file + "\n@@ -0,0 +1 @@\n+" + line + "\n"
	}
	inputs := func(patches map[string]string, order ...string) TreeRequest {
		dir := t.TempDir()
		series := ""
		for _, name := range order {
			os.WriteFile(filepath.Join(dir, name), []byte(patches[name]), 0o644)
			series += name + "\n"
		}
		os.WriteFile(filepath.Join(dir, "series"), []byte(series), 0o644)
		s, err := ReadSeries(dir)
		if err != nil {
			t.Fatal(err)
		}
		return TreeRequest{Trees: filepath.Join(cache, "trees"), Tarball: tarball, Key: key, Version: version, Series: s, BuildDir: buildDir}
	}
	ctx := context.Background()
	first, err := Prepare(ctx, inputs(map[string]string{"1.patch": add("a.c", "one"), "2.patch": add("b.c", "two")}, "1.patch", "2.patch"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	mtime := func(name string) time.Time {
		fi, err := os.Stat(filepath.Join(first.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime()
	}
	aBefore, bBefore, cBefore := mtime("a.c"), mtime("b.c"), mtime("c.c")
	time.Sleep(20 * time.Millisecond)

	// 2.patch changes to patch c.c instead; 1.patch stays.
	second, err := Prepare(ctx, inputs(map[string]string{"1.patch": add("a.c", "one"), "2.patch": add("c.c", "three")}, "1.patch", "2.patch"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if second.Dir != first.Dir {
		t.Fatalf("the tree moved: %s -> %s", first.Dir, second.Dir)
	}
	for name, want := range map[string]string{"a.c": "one\n", "b.c": "", "c.c": "three\n"} {
		if got := string(readFile(t, filepath.Join(second.Dir, name))); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !mtime("a.c").Equal(aBefore) {
		t.Error("a.c came out the same but got a new time: make would recompile it")
	}
	if !mtime("b.c").After(bBefore) || !mtime("c.c").After(cBefore) {
		t.Error("b.c and c.c changed but kept their times: make would not recompile them")
	}
	// Files no patch touches are links to the unpacked tarball, never copies or rewrites.
	pristine, err := os.Stat(filepath.Join(filepath.Dir(second.Dir), filepath.Base(second.Dir[:len(second.Dir)-len(".work")])+".pristine", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if work, _ := os.Stat(filepath.Join(second.Dir, "Makefile")); !os.SameFile(pristine, work) {
		t.Error("Makefile is not linked to the unpacked tarball")
	}
	// The same series again: nothing is touched.
	before := mtime("c.c")
	if _, err := Prepare(ctx, inputs(map[string]string{"1.patch": add("a.c", "one"), "2.patch": add("c.c", "three")}, "1.patch", "2.patch"), io.Discard); err != nil {
		t.Fatal(err)
	}
	if !mtime("c.c").Equal(before) {
		t.Error("an unchanged series rewrote the tree")
	}
	// A series that does not apply leaves no tree that looks current; the next good series works.
	if _, err := Prepare(ctx, inputs(map[string]string{"bad.patch": "--- a/a.c\n+++ b/a.c\n@@ -1 +1 @@\n-nothing like this\n+x\n"}, "bad.patch"), io.Discard); err == nil {
		t.Fatal("a patch that does not apply was accepted")
	}
	build := buildDir
	os.MkdirAll(build, 0o755)
	os.WriteFile(filepath.Join(build, "a.o"), []byte("built from a patched a.c"), 0o644)
	if _, err := Prepare(ctx, inputs(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
	// The tree was made again from the tarball: objects of the old build folder cannot be trusted.
	if _, err := os.Stat(filepath.Join(build, "a.o")); err == nil {
		t.Error("a working tree made anew kept the old build folder")
	}
	if got := string(readFile(t, filepath.Join(second.Dir, "a.c"))); got != "" {
		t.Errorf("with no patches a.c = %q", got)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
