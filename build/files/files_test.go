package files

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteAtomic: a write that fails half-way leaves the old file as it was and no temporary
// behind; one that succeeds replaces it whole, with the mode asked for.
func TestWriteAtomic(t *testing.T) {
	tests := []struct {
		name    string
		fill    func(io.Writer) error
		want    string
		wantErr bool
	}{
		{"replaces", func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, "new", false},
		{"fails half-way", func(w io.Writer) error { io.WriteString(w, "ne"); return errors.New("disk full") }, "old", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "record.json")
			os.WriteFile(p, []byte("old"), 0o600)
			err := WriteAtomic(p, 0o644, tt.fill)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			got, _ := os.ReadFile(p)
			if string(got) != tt.want {
				t.Errorf("content %q, want %q", got, tt.want)
			}
			if fi, _ := os.Stat(p); !tt.wantErr && fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v", fi.Mode())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

func TestJSONRoundTripAndLinkOrCopy(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.json")
	if err := WriteJSON(p, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	var got map[string]int
	if err := ReadJSON(p, &got); err != nil || got["a"] != 1 {
		t.Fatalf("ReadJSON = %v, %v", got, err)
	}
	os.WriteFile(p, []byte("{"), 0o644)
	if err := ReadJSON(p, &got); err == nil {
		t.Error("ReadJSON took a broken file")
	}
	dst := filepath.Join(dir, "copy")
	if err := LinkOrCopy(p, dst); err != nil || !Exists(dst) {
		t.Fatalf("LinkOrCopy: %v", err)
	}
	if Exists(filepath.Join(dir, "nothing")) {
		t.Error("Exists says yes to nothing")
	}
}

// TestRemoveAllWritable: read-only folders are emptied, and a link inside is removed without the
// mode of what it points to changing.
func TestRemoveAllWritable(t *testing.T) {
	outside := t.TempDir()
	os.Chmod(outside, 0o755)
	dir := filepath.Join(t.TempDir(), "dump")
	os.MkdirAll(filepath.Join(dir, "etc", "ro"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc", "ro", "f"), []byte("x"), 0o644)
	os.Symlink(outside, filepath.Join(dir, "etc", "link"))
	os.Chmod(filepath.Join(dir, "etc", "ro"), 0o555)
	os.Chmod(filepath.Join(dir, "etc"), 0o555)
	if err := RemoveAllWritable(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); err == nil {
		t.Error("the folder is still there")
	}
	if info, err := os.Stat(outside); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("the folder a link pointed to: %v, %v", info.Mode(), err)
	}
	if err := RemoveAllWritable(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Errorf("a missing folder: %v", err)
	}
}
