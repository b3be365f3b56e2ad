package pipeline

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

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/source"
)

// TestTreeFollowsPatchChanges changes the patch series under one working tree and checks that it
// stays at one path, holds exactly tarball + series, and that only files whose content changed get a
// new modification time: what lets make recompile only what a changed patch reaches.
func TestTreeFollowsPatchChanges(t *testing.T) {
	const version = "6.12.999"
	reg := func(name, body string) *tar.Header {
		return &tar.Header{Name: "linux-" + version + "/" + name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	}
	// smallTarball writes headers only: these files are empty, and the patches create content in them.
	tarball := filepath.Join(t.TempDir(), "linux.tar.xz")
	os.WriteFile(tarball, smallTarball(t, version, reg("a.c", ""), reg("b.c", ""), reg("c.c", "")), 0o644)
	sum := sha256.Sum256(mustRead(t, tarball))
	cache := t.TempDir()
	cfg := config.Config{Paths: config.Paths{Cache: cache, Patches: t.TempDir()}}
	add := func(file, line string) string { // a patch giving an empty file one line
		return "--- a/" + file + "\n+++ b/" + file + "\n@@ -0,0 +1 @@\n+" + line + "\n"
	}
	inputs := func(patches map[string]string, order ...string) kernelInputs {
		dir := t.TempDir()
		series := ""
		for _, name := range order {
			os.WriteFile(filepath.Join(dir, name), []byte(patches[name]), 0o644)
			series += name + "\n"
		}
		os.WriteFile(filepath.Join(dir, "series"), []byte(series), 0o644)
		s, err := source.ReadSeries(dir)
		if err != nil {
			t.Fatal(err)
		}
		return kernelInputs{src: kernelSource{version: version, sha256: hex.EncodeToString(sum[:])}, series: s}
	}
	ctx := context.Background()
	first, err := preparedTree(ctx, cfg, tarball, inputs(map[string]string{"1.patch": add("a.c", "one"), "2.patch": add("b.c", "two")}, "1.patch", "2.patch"), io.Discard)
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
	second, err := preparedTree(ctx, cfg, tarball, inputs(map[string]string{"1.patch": add("a.c", "one"), "2.patch": add("c.c", "three")}, "1.patch", "2.patch"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if second.Dir != first.Dir {
		t.Fatalf("the tree moved: %s -> %s", first.Dir, second.Dir)
	}
	for name, want := range map[string]string{"a.c": "one\n", "b.c": "", "c.c": "three\n"} {
		if got := string(mustRead(t, filepath.Join(second.Dir, name))); got != want {
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
	if _, err := preparedTree(ctx, cfg, tarball, inputs(map[string]string{"1.patch": add("a.c", "one"), "2.patch": add("c.c", "three")}, "1.patch", "2.patch"), io.Discard); err != nil {
		t.Fatal(err)
	}
	if !mtime("c.c").Equal(before) {
		t.Error("an unchanged series rewrote the tree")
	}
	// A series that does not apply leaves no tree that looks current; the next good series works.
	if _, err := preparedTree(ctx, cfg, tarball, inputs(map[string]string{"bad.patch": "--- a/a.c\n+++ b/a.c\n@@ -1 +1 @@\n-nothing like this\n+x\n"}, "bad.patch"), io.Discard); err == nil {
		t.Fatal("a patch that does not apply was accepted")
	}
	build := inputs(nil).buildDir(cfg)
	os.MkdirAll(build, 0o755)
	os.WriteFile(filepath.Join(build, "a.o"), []byte("built from a patched a.c"), 0o644)
	if _, err := preparedTree(ctx, cfg, tarball, inputs(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
	// The tree was made again from the tarball: objects of the old build folder cannot be trusted.
	if _, err := os.Stat(filepath.Join(build, "a.o")); err == nil {
		t.Error("a working tree made anew kept the old build folder")
	}
	if got := string(mustRead(t, filepath.Join(second.Dir, "a.c"))); got != "" {
		t.Errorf("with no patches a.c = %q", got)
	}
}
