package artifact

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"github.com/simple-uml/simple-uml/build/digest"
)

// TestAttackReleaseFolderLinks: a release folder (downloaded, or dist/release after someone else's
// hands) with an asset that is a link to a host file: its bytes were hashed, and would have been
// published. It is reported, and nothing outside the folder is read.
func TestAttackReleaseFolderLinks(t *testing.T) {
	dir := t.TempDir()
	canary := attacktest.NewCanary(t, dir, "id_ed25519")
	rel := filepath.Join(dir, "release")
	os.MkdirAll(rel, 0o755)
	if err := os.Symlink(canary.Path, filepath.Join(rel, "notes.md")); err != nil {
		t.Fatal(err)
	}
	sum, _ := digest.File(canary.Path)
	os.WriteFile(filepath.Join(rel, SumsName), []byte(sum+"  notes.md\n"), 0o644)
	_, problems, err := VerifyDir(rel)
	if err != nil || len(problems) != 1 || !strings.Contains(problems[0], "not a regular file") {
		t.Fatalf("problems %v, err %v", problems, err)
	}
	for _, bad := range []string{"../x", "notes copy.md", "a\tb", "-rf"} {
		if _, err := ParseSums([]byte(sum + "  " + bad + "\n")); err == nil {
			t.Errorf("SHA256SUMS listing %q accepted", bad)
		}
	}
	canary.Check(t)
}
