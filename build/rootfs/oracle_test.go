package rootfs

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/xbps/proplib"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

// oracleDir holds what the real xbps 0.60.7 wrote for a known install (its README says how).
var oracleDir = filepath.Join(fixtures, "oracle-xbps-0.60.7")

// ownFiles are what Stage adds to every tree beside what xbps-install leaves: the recipe's settings
// and simple-uml's own folder. Each is checked by the settings tests.
var ownFiles = map[string]bool{
	"./dev": true, "./proc": true, "./sys": true, "./run": true, "./tmp": true, "./root": true,
	"./etc/fstab": true, "./etc/xbps.d": true,
}

// TestOracleInstall installs what the oracle installed (hypridle, hyprcursor and ly from the
// Encoded14 repository, with a stub for Void's own packages) through Stage, and compares with what
// real xbps wrote: the same package database key for key and value for value (the install date and
// the repository's name aside), the same files lists byte for byte, the same tree and contents.
func TestOracleInstall(t *testing.T) {
	r := &Recipe{Name: "oracle", Path: "oracle.toml", Arch: "x86_64", Packages: []string{"hypridle", "hyprcursor", "ly"}, ImageSize: "64M",
		Repositories: []Repository{
			{URL: filepath.Join(fixtures, "Encoded14-void-user-repository/x86_64"), Keys: []string{"1d:c2:cf:d4:08:97:4c:47:5d:88:4c:fd:e9:a5:d0:9a"}},
			{URL: filepath.Join(oracleDir, "stub-repo"), AllowUnsigned: true},
		}}
	tree, st, _, err := stageRecipe(t, r)
	if err != nil {
		t.Fatal(err)
	}
	db := xbpstest.CheckDB(t, tree)

	t.Run("pkgdb", func(t *testing.T) {
		want := readPlist(t, filepath.Join(oracleDir, "var-db-xbps", "pkgdb-0.38.plist")).(map[string]any)
		if got, want := sortedKeys(db), sortedKeys(want); !reflect.DeepEqual(got, want) {
			t.Fatalf("packages %v, xbps has %v", got, want)
		}
		for name, w := range want {
			g := db[name]
			if name == "_XBPS_ALTERNATIVES_" {
				if !reflect.DeepEqual(g, w) {
					t.Errorf("%s: %v, xbps has %v", name, g, w)
				}
				continue
			}
			ge, we := g.(map[string]any), w.(map[string]any)
			if got, want := sortedKeys(ge), sortedKeys(we); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: keys %v\n  xbps has %v", name, got, want)
			}
			for k, wv := range we {
				if k == "install-date" || k == "repository" {
					continue // the time of each run; a host path there, "local:<folder>" here
				}
				if gv := ge[k]; !reflect.DeepEqual(gv, wv) {
					t.Errorf("%s %s: %#v, xbps has %#v", name, k, gv, wv)
				}
			}
			if repo, _ := ge["repository"].(string); !strings.HasPrefix(repo, "local:") {
				t.Errorf("%s repository %q", name, repo)
			}
		}
	})

	t.Run("files lists", func(t *testing.T) {
		want, _ := filepath.Glob(filepath.Join(oracleDir, "var-db-xbps", ".*-files.plist"))
		got, _ := filepath.Glob(filepath.Join(tree, "var/db/xbps", ".*-files.plist"))
		if len(got) != len(want) || len(want) != 7 {
			t.Errorf("%d files lists, xbps wrote %d", len(got), len(want))
		}
		for _, w := range want {
			wb, _ := os.ReadFile(w)
			gb, err := os.ReadFile(filepath.Join(tree, "var/db/xbps", filepath.Base(w)))
			if err != nil || !bytes.Equal(gb, wb) {
				t.Errorf("%s differs from xbps's (%v)", filepath.Base(w), err)
			}
		}
	})

	t.Run("tree", func(t *testing.T) {
		got, sums := listTree(t, tree, st)
		want := readLines(t, filepath.Join(oracleDir, "tree.txt"))
		diffLines(t, "tree.txt", got, want)
		diffLines(t, "tree.sha256", sums, readLines(t, filepath.Join(oracleDir, "tree.sha256")))
	})
}

func readPlist(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := proplib.Unmarshal(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	sort.Strings(lines)
	return lines
}

// listTree lists tree as the oracle's tree.txt and tree.sha256 do (type, mode, owner, path, link
// target; sha256 of regular files), leaving out var/db/xbps and what Stage adds on purpose. Owners
// and setuid bits come from the Staged record, as the image gets them.
func listTree(t *testing.T, tree string, st *Staged) (list, sums []string) {
	t.Helper()
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		name := "./" + filepath.ToSlash(rel)
		if rel == "." {
			name = "."
		}
		if name == "./var/db/xbps" || name == "./.simple-uml" || ownFiles[name] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		guest := strings.TrimPrefix(name, ".")
		owner := "root:root"
		if o, ok := st.Owners[guest]; ok {
			owner = o
		}
		mode := uint32(fi.Mode().Perm())
		if m, ok := st.Modes[guest]; ok {
			mode = m
		}
		switch {
		case d.IsDir():
			if fi.Mode()&fs.ModeSticky != 0 {
				mode |= 0o1000
			}
			list = append(list, fmt.Sprintf("d %o %s %s ", mode, owner, name))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			list = append(list, fmt.Sprintf("l 777 %s %s %s", owner, name, target))
		default:
			list = append(list, fmt.Sprintf("f %o %s %s ", mode, owner, name))
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			sums = append(sums, hex.EncodeToString(sum[:])+"  "+name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(list)
	sort.Strings(sums)
	return list, sums
}

func diffLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := map[string]bool{}, map[string]bool{}
	for _, l := range got {
		g[l] = true
	}
	for _, l := range want {
		w[l] = true
	}
	for _, l := range got {
		if !w[l] {
			t.Errorf("%s: we have %q, xbps has not", what, l)
		}
	}
	for _, l := range want {
		if !g[l] {
			t.Errorf("%s: xbps has %q, we have not", what, l)
		}
	}
}

// TestStageWritesWhatXbpsReads: descriptions, a signer and file names holding what an XML encoder
// escapes differently from proplib (apostrophes, quotes, ampersands, angle brackets, "]]>", tabs,
// newlines, UTF-8, a literal "&#39;") come out of Stage in files xbps can read, with the same text.
func TestStageWritesWhatXbpsReads(t *testing.T) {
	tricky := []string{`Hyprland's idle daemon`, `say "hi"`, `a & b`, `<tag>`, `]]>`, "tab\there\nnewline", "Grüße, 日本語", "&#39; literally"}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer := `Ann O'Brien "ob" & co <ob@example.org>`
	repo := xbpstest.Repo{Dir: t.TempDir(), Arch: "x86_64", Key: key, SignedBy: signer}
	var pkgs []xbpstest.Package
	var names []string
	for i, s := range tricky {
		name := fmt.Sprintf("odd%d", i)
		names = append(names, name)
		pkgs = append(pkgs, xbpstest.Package{Pkgver: name + "-1.0_1", ShortDesc: s,
			Files: map[string]xbpstest.File{"./usr/share/" + name + "/it's & <this> \"one\"": {Data: []byte(s)}}})
	}
	if err := repo.Write(pkgs); err != nil {
		t.Fatal(err)
	}
	r := &Recipe{Name: "odd", Path: "odd.toml", Arch: "x86_64", Packages: names, ImageSize: "64M",
		Repositories: []Repository{{URL: repo.Dir, Keys: []string{repo.Fingerprint()}}}}
	tree, _, _, err := stageRecipe(t, r)
	if err != nil {
		t.Fatal(err)
	}
	db := xbpstest.CheckDB(t, tree)
	for i, s := range tricky {
		name := names[i]
		if got := db[name].(map[string]any)["short_desc"]; got != s {
			t.Errorf("%s short_desc %q, want %q", name, got, s)
		}
		files := readPlist(t, filepath.Join(tree, "var/db/xbps", "."+name+"-files.plist")).(map[string]any)
		entry := files["files"].([]any)[0].(map[string]any)
		if want := "/usr/share/" + name + "/it's & <this> \"one\""; entry["file"] != want {
			t.Errorf("%s files list: %q, want %q", name, entry["file"], want)
		}
	}
	keyFile := readPlist(t, filepath.Join(tree, "var/db/xbps/keys", repo.Fingerprint()+".plist")).(map[string]any)
	if keyFile["signature-by"] != signer {
		t.Errorf("trusted key signed by %q, want %q", keyFile["signature-by"], signer)
	}
	pkgdb, _ := os.ReadFile(filepath.Join(tree, "var/db/xbps", pkgdbName))
	if !bytes.Contains(pkgdb, []byte(`<string>Hyprland's idle daemon</string>`)) || bytes.Contains(pkgdb, []byte("&#")) {
		t.Errorf("pkgdb escapes as xbps does not:\n%s", pkgdb)
	}
}
