package files

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A console log passes its bound by moving to .1, the one before going: two bounds at most.
func TestRotatingLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	l := &RotatingLog{Path: path, Max: 100}
	for i := 0; i < 50; i++ {
		l.Write([]byte(strings.Repeat("x", 9) + "\n"))
	}
	l.Write([]byte("last\n"))
	l.Close()
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if len(cur) > 100 || len(old) > 100 || !strings.HasSuffix(string(cur), "last\n") || len(old) == 0 {
		t.Errorf("console.log %d bytes (%q), .1 %d bytes", len(cur), cur, len(old))
	}
}
