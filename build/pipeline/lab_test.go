package pipeline

import (
	"os"
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

// TestLabImage: a guest boots the image its lab file names, which must be a file, or its recipe's
// (the boot recipe's by default) in dist/ with the recipe's root password; a recipe dist/ has not is
// named with the command that builds it.
func TestLabImage(t *testing.T) {
	cfg := loadConfig(t, guestDist(t, "6.12.117"), nil)
	own := filepath.Join(t.TempDir(), "own.ext4")
	os.WriteFile(own, nil, 0o644)
	tests := []struct {
		guest    lab.Guest
		path     string // of a pass
		password string
		want     string // in the error
	}{
		{guest: lab.Guest{Name: "a", Image: own, RootPassword: "pw"}, path: own, password: "pw"},
		{guest: lab.Guest{Name: "a", Image: t.TempDir()}, want: "guest a: image"},
		{guest: lab.Guest{Name: "a", Image: filepath.Join(t.TempDir(), "missing.ext4")}, want: "no such file"},
		{guest: lab.Guest{Name: "b"}, path: filepath.Join(cfg.Paths.Dist, "void-minimal.ext4"), password: "voidlinux"},
		{guest: lab.Guest{Name: "c", Recipe: "void-musl"}, want: "rootfs -recipe=void-musl"},
	}
	for _, tt := range tests {
		img, err := labImage(cfg, tt.guest)
		if tt.want != "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%+v: %v, want %q", tt.guest, err, tt.want)
			}
			continue
		}
		if err != nil || img.Path != tt.path || img.RootPassword != tt.password {
			t.Errorf("%+v: %+v %v", tt.guest, img, err)
		}
	}
}
