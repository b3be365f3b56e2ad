package confine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte("victim"), 0o644)
	os.WriteFile(filepath.Join(dir, "shared"), []byte("pristine"), 0o644)
	os.Symlink(outside, filepath.Join(dir, "link"))
	os.Link(filepath.Join(dir, "shared"), filepath.Join(dir, "hard"))
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := WriteNew(root, "new", strings.NewReader("data"), 0o444, mtime); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "new"))
	if fi.Mode().Perm() != 0o444 || !fi.ModTime().Equal(mtime) {
		t.Errorf("new file: %v %v", fi.Mode(), fi.ModTime())
	}
	for _, name := range []string{"link", "hard", "../escape"} {
		if err := WriteNew(root, name, strings.NewReader("evil"), 0o644, time.Time{}); err == nil {
			t.Errorf("%s: written", name)
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "victim" {
		t.Errorf("written through the link: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "shared")); string(b) != "pristine" {
		t.Errorf("written through the hard link: %q", b)
	}
}
