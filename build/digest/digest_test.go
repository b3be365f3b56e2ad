package digest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDigests(t *testing.T) {
	const abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" // FIPS 180-2's "abc"
	path := filepath.Join(t.TempDir(), "abc")
	os.WriteFile(path, []byte("abc"), 0o644)
	file, err := File(path)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := Reader(strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"Bytes": Bytes([]byte("abc")), "File": file, "Reader": reader} {
		if got != abc {
			t.Errorf("%s(abc) = %s", name, got)
		}
	}
	if _, err := File(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file has a digest")
	}
	// Map keys are encoded sorted: equal values, equal keys.
	a := JSON(map[string]int{"x": 1, "y": 2})
	b := JSON(map[string]int{"y": 2, "x": 1})
	if a != b || a != Bytes([]byte(`{"x":1,"y":2}`)) {
		t.Errorf("JSON: %s, %s", a, b)
	}
}
