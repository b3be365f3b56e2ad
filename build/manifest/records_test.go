package manifest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/simple-uml/simple-uml/build/digest"
)

// TestReadCurrent: a stage has nothing to do only when its record has the same input key and the
// folder still holds the outputs the record lists.
func TestReadCurrent(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		change func(dir string)
		want   bool
	}{
		{"same key, outputs intact", "k1", func(string) {}, true},
		{"other key", "k2", func(string) {}, false},
		{"output rewritten", "k1", func(dir string) { os.WriteFile(filepath.Join(dir, "linux"), []byte("other"), 0o755) }, false},
		{"output gone", "k1", func(dir string) { os.Remove(filepath.Join(dir, "linux")) }, false},
		{"record gone", "k1", func(dir string) { os.Remove(filepath.Join(dir, KernelRecordName)) }, false},
		{"record not JSON", "k1", func(dir string) { os.WriteFile(filepath.Join(dir, KernelRecordName), []byte("{"), 0o644) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "linux"), []byte("kernel"), 0o755)
			sum, _ := digest.File(filepath.Join(dir, "linux"))
			writeRecord(t, filepath.Join(dir, KernelRecordName), KernelRecord{InputKey: "k1", Outputs: map[string]string{"linux": sum}})
			tt.change(dir)
			r, ok := ReadCurrent[KernelRecord](filepath.Join(dir, KernelRecordName), tt.key)
			if ok != tt.want || (ok && r.InputKey != tt.key) {
				t.Errorf("ReadCurrent = %v, %v; want current %v", r, ok, tt.want)
			}
		})
	}
	t.Run("rootfs record without outputs", func(t *testing.T) {
		dir := t.TempDir()
		writeRecord(t, filepath.Join(dir, "r.json"), RootfsRecord{Recipe: "r", InputKey: "k1"})
		if _, ok := ReadCurrent[RootfsRecord](filepath.Join(dir, "r.json"), "k1"); ok {
			t.Error("a record listing no outputs is current")
		}
	})
	t.Run("rootfs image touched", func(t *testing.T) {
		dir := t.TempDir()
		image := filepath.Join(dir, "r.ext4")
		os.WriteFile(image, []byte("image"), 0o644)
		out, err := Describe(image)
		if err != nil {
			t.Fatal(err)
		}
		writeRecord(t, filepath.Join(dir, "r.json"), RootfsRecord{Recipe: "r", InputKey: "k1", Outputs: map[string]Output{"r.ext4": out}})
		if _, ok := ReadCurrent[RootfsRecord](filepath.Join(dir, "r.json"), "k1"); !ok {
			t.Fatal("an untouched image is not current")
		}
		os.WriteFile(image, []byte("a longer image"), 0o644)
		if _, ok := ReadCurrent[RootfsRecord](filepath.Join(dir, "r.json"), "k1"); ok {
			t.Error("a rewritten image is current")
		}
	})
}

func writeRecord(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
