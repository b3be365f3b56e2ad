package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// needImageTools skips on a machine without fakeroot and e2fsprogs, except in CI (SUML_E2E=1), where
// they are installed and the test must run.
func needImageTools(t *testing.T) {
	for _, tool := range []string{"fakeroot", "mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("SUML_E2E") == "1" {
				t.Fatalf("%s is missing (apt-get install fakeroot e2fsprogs)", tool)
			}
			t.Skipf("%s is missing", tool)
		}
	}
}

// imageTree writes a small guest tree with what images must keep: owners, setuid, a hard link, a
// symlink, a read-only folder, and times before and after the epoch.
func imageTree(t *testing.T, epoch time.Time) (string, map[string]string) {
	t.Helper()
	tree := t.TempDir()
	for _, d := range []string{"etc", "usr/bin", "home/u", "var/empty"} {
		os.MkdirAll(filepath.Join(tree, d), 0o755)
	}
	os.WriteFile(filepath.Join(tree, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "usr/bin/su"), []byte("su binary"), 0o755)
	os.Chmod(filepath.Join(tree, "usr/bin/su"), 0o755|os.ModeSetuid)
	os.WriteFile(filepath.Join(tree, "usr/bin/a"), []byte("linked"), 0o755)
	os.Link(filepath.Join(tree, "usr/bin/a"), filepath.Join(tree, "usr/bin/b"))
	os.Symlink("usr/bin", filepath.Join(tree, "bin"))
	os.WriteFile(filepath.Join(tree, "home/u/notes"), []byte("mine"), 0o600)
	os.Chtimes(filepath.Join(tree, "etc/passwd"), epoch.Add(-time.Hour), epoch.Add(-time.Hour))
	os.Chmod(filepath.Join(tree, "var/empty"), 0o555)
	return tree, map[string]string{"/home/u": "1000:1000", "/home/u/notes": "1000:1000"}
}

// configure changes an image as a boot does: a file written at the host's time, a mount recorded.
func configure(t *testing.T, img string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "hostname")
	os.WriteFile(src, []byte("guest\n"), 0o644)
	script := "write " + src + " /etc/hostname\nssv mtime now\nssv mnt_count 3\n"
	cmd := exec.Command("debugfs", "-w", "-f", "-", img)
	cmd.Stdin = bytes.NewBufferString(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
}

func TestImagesDependOnlyOnTheTree(t *testing.T) {
	needImageTools(t)
	epoch := time.Unix(1732000000, 0)
	ctx := context.Background()
	dir := t.TempDir()
	opts := ImageOptions{Size: 8 << 20, UUID: "01234567-89ab-4def-8123-456789abcdef", Label: "t", Epoch: epoch, Log: io.Discard}
	var images, reimages [2]string
	for i := range images {
		tree, owners := imageTree(t, epoch)
		os.WriteFile(filepath.Join(tree, "etc/new"), []byte("written now"), 0o644) // mtime: now, after the epoch
		opts.Owners = owners
		images[i] = filepath.Join(dir, "img"+string(rune('0'+i)))
		if err := MakeImage(ctx, tree, images[i], opts); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			time.Sleep(1100 * time.Millisecond) // host times move on between the two
		}
	}
	if !sameFile(t, images[0], images[1]) {
		t.Fatal("two images of equal trees made a second apart differ")
	}
	for i := range reimages {
		configure(t, images[i])
		reimages[i] = images[i] + ".re"
		opts.Owners = nil
		if err := Reimage(ctx, images[i], reimages[i], opts); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			time.Sleep(1100 * time.Millisecond)
		}
	}
	if sameFile(t, images[0], images[1]) {
		t.Fatal("the configure step left no trace to remove; the test proves nothing")
	}
	if !sameFile(t, reimages[0], reimages[1]) {
		t.Fatal("images made again from two configured images differ")
	}
	// The new image holds what the configured one held.
	var buf bytes.Buffer
	if err := Tarball(ctx, reimages[0], &buf, epoch); err != nil {
		t.Fatal(err)
	}
	got := tarHeaders(t, buf.Bytes())
	checks := []struct {
		name string
		ok   func(h *tar.Header) bool
	}{
		{"./usr/bin/su", func(h *tar.Header) bool { return h.Mode == 0o4755 && h.Uid == 0 }},
		{"./home/u/notes", func(h *tar.Header) bool { return h.Mode == 0o600 && h.Uid == 1000 && h.Gid == 1000 }},
		{"./usr/bin/b", func(h *tar.Header) bool { return h.Typeflag == tar.TypeLink && h.Linkname == "./usr/bin/a" }},
		{"./bin", func(h *tar.Header) bool { return h.Typeflag == tar.TypeSymlink && h.Linkname == "usr/bin" }},
		{"./var/empty/", func(h *tar.Header) bool { return h.Mode == 0o555 }},
		{"./etc/hostname", func(h *tar.Header) bool { return h.Size == 6 }},
	}
	for _, c := range checks {
		if h, ok := got[c.name]; !ok || !c.ok(h) {
			t.Errorf("%s: %+v", c.name, h)
		}
	}
}

func sameFile(t *testing.T, a, b string) bool {
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(da, db)
}

// TestImageLeavesTheWorkingFolderAlone: reading an image back dumped its directories into the
// current folder (which may be read-only, or hold names of its own).
func TestImageLeavesTheWorkingFolderAlone(t *testing.T) {
	needImageTools(t)
	cwd := t.TempDir()
	os.Mkdir(filepath.Join(cwd, "i2"), 0o755) // where the root directory's blocks went
	t.Chdir(cwd)
	tree, owners := imageTree(t, time.Unix(1732000000, 0))
	opts := ImageOptions{Size: 8 << 20, UUID: "01234567-89ab-4def-8123-456789abcdef", Label: "t", Epoch: time.Unix(1732000000, 0), Owners: owners, Log: io.Discard}
	if err := MakeImage(context.Background(), tree, filepath.Join(t.TempDir(), "img"), opts); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(cwd); len(entries) != 1 {
		t.Errorf("the working folder holds %v", entries)
	}
}
