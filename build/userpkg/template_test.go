package userpkg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/xbps"
)

const minimal = `name = "hello"
version = "1.0"
revision = 1
arch = "x86_64"
short_desc = "hello"
payload = "payload"
`

func TestTemplateErrors(t *testing.T) {
	for _, c := range []struct {
		name, text, want string
	}{
		{"no name", strings.Replace(minimal, `name = "hello"`, ``, 1), `set name = "hello"`},
		{"a name with a slash", strings.Replace(minimal, `"hello"`, `"../hello"`, 1), `name "../hello"`},
		{"no version", strings.Replace(minimal, `version = "1.0"`, ``, 1), `set version = "1.0"`},
		{"a version with '-'", strings.Replace(minimal, `"1.0"`, `"1.0-rc1"`, 1), `write "1.0rc1"`},
		{"a version with '_'", strings.Replace(minimal, `"1.0"`, `"1_0"`, 1), `write "1.0"`},
		{"a version without a digit", strings.Replace(minimal, `"1.0"`, `"latest"`, 1), "holds no digit"},
		{"a version with a blank", strings.Replace(minimal, `"1.0"`, `"1 0"`, 1), `version "1 0"`},
		{"no revision", strings.Replace(minimal, `revision = 1`, ``, 1), "set revision = 1"},
		{"a negative revision", strings.Replace(minimal, `revision = 1`, `revision = -2`, 1), "set revision = 1"},
		{"a revision as text", strings.Replace(minimal, `revision = 1`, `revision = "1"`, 1), "revision"},
		{"no arch", strings.Replace(minimal, `arch = "x86_64"`, ``, 1), `"noarch"`},
		{"an arch with a slash", strings.Replace(minimal, `"x86_64"`, `"x86/64"`, 1), "arch"},
		{"no short_desc", strings.Replace(minimal, `short_desc = "hello"`, ``, 1), "short_desc"},
		{"a short_desc of two lines", strings.Replace(minimal, `short_desc = "hello"`, `short_desc = "a\nb"`, 1), "one line"},
		{"no payload", strings.Replace(minimal, `payload = "payload"`, ``, 1), `set payload = "folder"`},
		{"a date without zone", minimal + "date = 2024-01-02T03:04:05\n", "2024-01-02T03:04:05Z"},
		{"a date only", minimal + "date = 2024-01-02\n", "2024-01-02T00:00:00Z"},
		{"an unknown key", minimal + "depends = [\"a\"]\n", "unknown key(s) depends"},
		{"not TOML", "name = ", "template"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseTemplate([]byte(c.text), "t/hello.toml")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
			if err != nil && !strings.Contains(err.Error(), "t/hello.toml") {
				t.Errorf("the error does not name the template: %v", err)
			}
		})
	}
	tpl, err := ParseTemplate([]byte(minimal+"date = 2024-01-02T03:04:05+01:00\n"), "t/hello.toml")
	if err != nil || tpl.Pkgver() != "hello-1.0_1" || tpl.File("payload") != filepath.Join("t", "payload") || tpl.Date.Unix() != 1704161045 {
		t.Errorf("%+v %v", tpl, err)
	}
}

// writeTemplate writes text as dir/pkg.toml with a payload folder of one file.
func writeTemplate(t *testing.T, dir, text string) *Template {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(dir, "payload", "usr", "bin"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "payload", "usr", "bin", "hello"), []byte("#!/bin/sh\necho hello\n"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "pkg.toml"), []byte(text), 0o644))
	tpl, err := LoadTemplate(filepath.Join(dir, "pkg.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestBuildErrors(t *testing.T) {
	date := time.Unix(1704164645, 0)
	for _, c := range []struct {
		name  string
		extra string
		setup func(dir string)
		date  time.Time
		want  string
	}{
		{"no date", "", nil, time.Time{}, "set date = "},
		{"the payload folder missing", "", func(dir string) { os.RemoveAll(filepath.Join(dir, "payload")) }, date, "payload = \"payload\" names the folder"},
		{"the payload a file", "", func(dir string) {
			os.RemoveAll(filepath.Join(dir, "payload"))
			os.WriteFile(filepath.Join(dir, "payload"), nil, 0o644)
		}, date, "payload"},
		{"an INSTALL in the payload", "", func(dir string) { os.WriteFile(filepath.Join(dir, "payload", "INSTALL"), nil, 0o755) }, date, "install, remove"},
		{"the install script missing", "install = \"INSTALL\"\n", nil, date, "install: open"},
		{"the install script a folder", "install = \"payload\"\n", nil, date, "want a regular file"},
		{"a conf file not in the payload", "conf_files = [\"/etc/hello.conf\"]\n", nil, date, "conf_files: /etc/hello.conf is not a regular file"},
		{"a dependency with a blank", "run_depends = [\"busybox >=1.0_1\"]\n", nil, date, "one word"},
		{"provides without revision", "provides = [\"greeter-1.0\"]\n", nil, date, "provides: \"greeter-1.0\" is not a pkgver"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			tpl := writeTemplate(t, dir, minimal+c.extra)
			if c.setup != nil {
				c.setup(dir)
			}
			out := filepath.Join(dir, "out")
			_, err := Build(tpl, BuildOptions{OutDir: out, Date: c.date})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
			if err != nil && !strings.Contains(err.Error(), "pkg.toml") {
				t.Errorf("the error does not name the template: %v", err)
			}
			if entries, _ := os.ReadDir(out); len(entries) > 0 {
				t.Errorf("left %v in the output folder", entries)
			}
		})
	}
}

// TestBuildLeavesNoOldSignature: a new package invalidates the .sig2 beside the one it replaces.
func TestBuildLeavesNoOldSignature(t *testing.T) {
	dir := t.TempDir()
	tpl := writeTemplate(t, dir, minimal)
	out := filepath.Join(dir, "out")
	must(t, os.MkdirAll(out, 0o755))
	must(t, os.WriteFile(filepath.Join(out, "hello-1.0_1.x86_64.xbps.sig2"), []byte("old"), 0o644))
	b, err := Build(tpl, BuildOptions{OutDir: out, Date: time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.Path + ".sig2"); err == nil || b.RemovedSig == "" {
		t.Errorf("the old signature stays (%q)", b.RemovedSig)
	}
	// The same package made again is the same bytes: its signature still holds and stays.
	must(t, os.WriteFile(b.Path+".sig2", []byte("valid"), 0o644))
	if b, err = Build(tpl, BuildOptions{OutDir: out, Date: time.Unix(1, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.Path + ".sig2"); err != nil || b.RemovedSig != "" {
		t.Errorf("the signature of an unchanged package was removed (%v, %q)", err, b.RemovedSig)
	}
}

func TestRepoErrors(t *testing.T) {
	key := readKey(t)
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		opts  RepoOptions
		want  string
	}{
		{"no packages", func(*testing.T, string) {}, RepoOptions{}, "holds no .xbps package"},
		{"a key without a signer", func(*testing.T, string) {}, RepoOptions{Key: key}, "signer's name"},
		{"only noarch packages", func(t *testing.T, dir string) {
			copyGolden(t, dir, "hello-doc-1.0_1.noarch.xbps", "hello-doc-1.0_1.noarch.xbps")
		}, RepoOptions{}, "only noarch packages"},
		{"a package under another name", func(t *testing.T, dir string) {
			copyGolden(t, dir, "hello-1.2.3_1.x86_64.xbps", "hello.xbps")
		}, RepoOptions{}, "rename it"},
		{"not a package", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "junk-1.0_1.x86_64.xbps"), []byte("not a package at all"), 0o644))
		}, RepoOptions{}, "junk-1.0_1.x86_64.xbps"},
		{"the folder missing", func(t *testing.T, dir string) { os.RemoveAll(dir) }, RepoOptions{}, "repository folder"},
		{"an architecture that is a path", func(t *testing.T, dir string) {
			copyGolden(t, dir, "hello-doc-1.0_1.noarch.xbps", "hello-doc-1.0_1.noarch.xbps")
		}, RepoOptions{Arches: []string{"../x86_64"}}, `architecture "../x86_64"`},
		{"noarch as the architecture", func(t *testing.T, dir string) {
			copyGolden(t, dir, "hello-doc-1.0_1.noarch.xbps", "hello-doc-1.0_1.noarch.xbps")
		}, RepoOptions{Arches: []string{"noarch"}}, `architecture "noarch"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "repo")
			must(t, os.Mkdir(dir, 0o755))
			c.setup(t, dir)
			_, err := IndexFolder(dir, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
			matches, _ := filepath.Glob(filepath.Join(dir, "*-repodata"))
			if len(matches) > 0 {
				t.Errorf("wrote %v", matches)
			}
		})
	}
	// An architecture asked for takes what the folder has for it, noarch packages alone too.
	dir := t.TempDir()
	copyGolden(t, dir, "hello-doc-1.0_1.noarch.xbps", "hello-doc-1.0_1.noarch.xbps")
	copyGolden(t, dir, "hello-1.2.3_1.x86_64.xbps", "hello-1.2.3_1.x86_64.xbps")
	r, err := IndexFolder(dir, RepoOptions{Arches: []string{"aarch64"}})
	if err != nil || len(r.Indexes) != 1 || len(r.Indexes[0].Entries) != 1 || strings.Join(r.Skipped, " ") != "hello-1.2.3_1.x86_64.xbps" {
		t.Errorf("%+v %v", r, err)
	}
}

func copyGolden(t *testing.T, dir, name, as string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenRepo, name))
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(dir, as), data, 0o644))
}

// FuzzTemplate: whatever the text, a template accepted names a package whose pkgver xbps splits
// back into the same name and version, and whose file name is one safe word.
func FuzzTemplate(f *testing.F) {
	f.Add([]byte(minimal))
	if data, err := os.ReadFile(filepath.Join("testdata", "hello", "hello.toml")); err == nil {
		f.Add(data)
	}
	f.Add([]byte(strings.Replace(minimal, `"1.0"`, `"1.0-rc1"`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		tpl, err := ParseTemplate(data, "fuzz.toml")
		if err != nil {
			return
		}
		name, version, ok := xbps.SplitPkgver(tpl.Pkgver())
		if !ok || name != tpl.Name || version != tpl.Version+"_"+strings.TrimPrefix(tpl.Pkgver(), tpl.Name+"-"+tpl.Version+"_") {
			t.Fatalf("%q splits into %q %q %v", tpl.Pkgver(), name, version, ok)
		}
		p := &xbps.NewPackage{Pkgver: tpl.Pkgver(), Arch: tpl.Arch}
		if err := ident.Name("package file", p.Name()); err != nil {
			t.Fatalf("%q: %v", p.Name(), err)
		}
	})
}
