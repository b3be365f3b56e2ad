package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/attacktest"
)

// TestAttackManifestOutputNames: a fetched manifest's outputs named files that were then hashed
// and printed, ../../etc/hostname among them. Only plain file names are opened.
func TestAttackManifestOutputNames(t *testing.T) {
	dir := t.TempDir()
	canary := attacktest.NewCanary(t, dir, "hostname")
	dist := filepath.Join(dir, "dist")
	os.MkdirAll(dist, 0o755)
	for _, name := range []string{"../hostname", "/etc/hostname", "a\nb"} {
		kernel := KernelRecord{Outputs: map[string]string{name: strings.Repeat("0", 64)}}
		if err := kernel.CheckOutputs(dist); err == nil || !strings.Contains(err.Error(), "output name") {
			t.Errorf("kernel record, %q: %v", name, err)
		}
		root := RootfsRecord{Recipe: "r", Outputs: map[string]Output{name: {SHA256: strings.Repeat("0", 64)}}}
		if err := root.CheckOutputs(dist); err == nil || !strings.Contains(err.Error(), "output name") {
			t.Errorf("rootfs record, %q: %v", name, err)
		}
	}
	canary.Check(t)
}
