package xbpstest

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/xbps/proplib"
)

// CheckDB reads every property list under tree's var/db/xbps as strictly as xbps does (proplib:
// five named entities, nothing else) and checks that pkgdb's entries and the files lists beside
// it agree as xbps leaves them: a package with files has a files list whose sha256 is its
// metafile-sha256, a package without has neither. It returns pkgdb.
func CheckDB(t testing.TB, tree string) map[string]any {
	t.Helper()
	dir := filepath.Join(tree, "var", "db", "xbps")
	plists := map[string]any{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".plist") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		v, err := proplib.Unmarshal(data)
		if err != nil {
			t.Errorf("xbps cannot read %s: %v", p, err)
			return nil
		}
		sum := sha256.Sum256(data)
		plists[p] = hex.EncodeToString(sum[:])
		if filepath.Base(p) == "pkgdb-0.38.plist" {
			plists[""] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db, ok := plists[""].(map[string]any)
	if !ok {
		t.Fatalf("%s has no readable pkgdb-0.38.plist", dir)
	}
	if _, ok := db["_XBPS_ALTERNATIVES_"].(map[string]any); !ok {
		t.Errorf("pkgdb has no _XBPS_ALTERNATIVES_ dictionary (xbps-alternatives fails without it)")
	}
	for name, e := range db {
		entry, ok := e.(map[string]any)
		if name == "_XBPS_ALTERNATIVES_" || !ok {
			continue
		}
		files := filepath.Join(dir, "."+name+"-files.plist")
		sum, has := plists[files].(string)
		if want, _ := entry["metafile-sha256"].(string); want != sum {
			t.Errorf("pkgdb %s: metafile-sha256 %q, files list %s: sha256 %q (present: %v)", name, want, files, sum, has)
		}
		if entry["pkgname"] != name {
			t.Errorf("pkgdb %s: pkgname %v", name, entry["pkgname"])
		}
	}
	return db
}
