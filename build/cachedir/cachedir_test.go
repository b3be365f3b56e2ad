package cachedir

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func fill(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, size := range map[string]int{"downloads/ab/cd": 8192, "build/6.12-x86_64/vmlinux.o": 40000, "run/void-cow-1/guest.cow": 100, "odd/thing": 10, LockName: 4} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, bytes.Repeat([]byte{1}, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A folder dumped from an image can be read-only inside.
	dump := filepath.Join(dir, "rootfs", "1234", "dump", "etc")
	os.MkdirAll(dump, 0o755)
	os.WriteFile(filepath.Join(dump, "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.Chmod(dump, 0o555)
	return dir
}

func names(entries []Entry) string {
	var out []string
	for _, e := range entries {
		out = append(out, e.Name)
	}
	return strings.Join(out, " ")
}

func TestUsage(t *testing.T) {
	dir := fill(t)
	entries, err := Usage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(entries); got != "build downloads odd rootfs run" {
		t.Fatalf("entries %q; want every folder but the lock, by name", got)
	}
	for _, e := range entries {
		if e.Bytes <= 0 || (e.Name == "odd") != (e.What == "") {
			t.Errorf("%+v: want a size, and a description for each folder a stage makes", e)
		}
	}
	if missing, err := Usage(filepath.Join(dir, "nothing")); err != nil || missing != nil {
		t.Errorf("a missing cache: %v, %v; want nothing", missing, err)
	}
}

func TestClean(t *testing.T) {
	for _, keep := range []bool{false, true} {
		dir := fill(t)
		var out bytes.Buffer
		if err := Clean(context.Background(), dir, filepath.Join(dir, "downloads"), keep, &out); err != nil {
			t.Fatal(err)
		}
		entries, _ := Usage(dir)
		want := map[bool]string{false: "odd", true: "downloads odd"}[keep]
		if got := names(entries); got != want {
			t.Errorf("keepDownloads %v: left %q, want %q", keep, got, want)
		}
		if _, err := os.Stat(filepath.Join(dir, LockName)); err != nil {
			t.Errorf("the lock file went: %v", err)
		}
		if !strings.Contains(out.String(), "freed") || !strings.Contains(out.String(), "left "+filepath.Join(dir, "odd")) {
			t.Errorf("output %q", out.String())
		}
	}
}

// TestCleanRefusesWhileUsed: a process with a file open in the cache (a guest's copy-on-write file)
// makes Clean refuse, naming it, and remove nothing, also when the cache is reached through a link.
func TestCleanRefusesWhileUsed(t *testing.T) {
	dir := fill(t)
	linked := filepath.Join(t.TempDir(), "cache-link")
	if err := os.Symlink(dir, linked); err != nil {
		t.Fatal(err)
	}
	cow := filepath.Join(dir, "run", "void-cow-1", "guest.cow")
	guest := exec.Command("sleep", "60")
	f, err := os.Open(cow)
	if err != nil {
		t.Fatal(err)
	}
	guest.ExtraFiles = []*os.File{f}
	if err := guest.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	defer guest.Process.Kill()
	err = Clean(context.Background(), linked, "", false, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "in use by pid") || !strings.Contains(err.Error(), "(sleep)") {
		t.Fatalf("clean while a guest runs: %v", err)
	}
	if _, err := os.Stat(cow); err != nil {
		t.Errorf("a refused clean removed %s: %v", cow, err)
	}
}

// TestCleanKeepsDownloadsElsewhere: -keepDownloads keeps paths.downloads by its path, whatever its
// name in the cache.
func TestCleanKeepsDownloadsElsewhere(t *testing.T) {
	dir := fill(t)
	os.Rename(filepath.Join(dir, "downloads"), filepath.Join(dir, "verified"))
	if err := Clean(context.Background(), dir, filepath.Join(dir, "verified"), true, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "verified", "ab", "cd")); err != nil {
		t.Errorf("the downloads went: %v", err)
	}
}
