package pipeline

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/lab"
)

// TestShippedLabs: every lab in labs/ loads, and labs/README.md lists it.
func TestShippedLabs(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "labs")
	files, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
	if len(files) < 3 {
		t.Fatalf("labs/ ships %d labs, want the three examples", len(files))
	}
	readme := string(mustRead(t, filepath.Join(dir, "README.md")))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".toml")
		if _, err := lab.Load(dir, name); err != nil {
			t.Error(err)
		}
		if !strings.Contains(readme, "| `"+name+"` |") {
			t.Errorf("labs/README.md does not list %s", name)
		}
	}
}
