package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const quiltPatch = `Subject: say hello

--- a/init/main.c
+++ b/init/main.c
@@ -1,3 +1,4 @@
 line one
+hello from a patch
 line two
 line three
`

const gitPatch = `From 1 Mon Sep 17 00:00:00 2001
Subject: [PATCH] add a file

diff --git a/new.txt b/new.txt
new file mode 100644
index 0000000..ce01362
--- /dev/null
+++ b/new.txt
@@ -0,0 +1 @@
+hello
`

func TestApplySeries(t *testing.T) {
	tests := []struct {
		name    string
		series  string
		patches map[string]string
		want    map[string]string // file -> content after
		wantErr []string          // parts of the error
	}{
		{
			name:   "empty series",
			series: "# nothing yet\n",
			want:   map[string]string{"init/main.c": "line one\nline two\nline three\n"},
		},
		{
			name:    "quilt and git patches in order",
			series:  "0001-hello.patch\n0002-new.patch -p1\n",
			patches: map[string]string{"0001-hello.patch": quiltPatch, "0002-new.patch": gitPatch},
			want:    map[string]string{"init/main.c": "line one\nhello from a patch\nline two\nline three\n", "new.txt": "hello\n"},
		},
		{
			name:    "hunk does not apply",
			series:  "0001-bad.patch\n",
			patches: map[string]string{"0001-bad.patch": strings.Replace(quiltPatch, " line two", " line 2", 1)},
			wantErr: []string{"0001-bad.patch", "init/main.c", "hunk #1", "without fuzz"},
		},
		{
			name:    "file missing",
			series:  "0001-missing.patch\n",
			patches: map[string]string{"0001-missing.patch": strings.ReplaceAll(quiltPatch, "init/main.c", "init/gone.c")},
			wantErr: []string{"init/gone.c", "file to patch"},
		},
		{
			name:    "escapes the tree",
			series:  "0001-evil.patch -p0\n",
			patches: map[string]string{"0001-evil.patch": strings.NewReplacer("a/init/main.c", "../main.c", "b/init/main.c", "../main.c").Replace(quiltPatch)},
			wantErr: []string{"outside the tree"},
		},
		{
			name:    "patch listed but absent",
			series:  "0009-absent.patch\n",
			wantErr: []string{"series line 1", "0009-absent.patch"},
		},
		{
			name:    "bad option",
			series:  "0001-hello.patch --fuzz=3\n",
			patches: map[string]string{"0001-hello.patch": quiltPatch},
			wantErr: []string{"unknown option", "--fuzz=3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree, pdir := t.TempDir(), t.TempDir()
			writeFiles(t, tree, map[string]string{"init/main.c": "line one\nline two\nline three\n"})
			writeFiles(t, pdir, tt.patches)
			writeFiles(t, pdir, map[string]string{"series": tt.series})
			series, err := ReadSeries(pdir)
			if err == nil {
				err = Apply(tree, series)
			}
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				got, err := os.ReadFile(filepath.Join(tree, name))
				if err != nil || string(got) != want {
					t.Errorf("%s = %q, %v; want %q", name, got, err, want)
				}
			}
		})
	}
}

func TestReadSeriesMissingDirIsEmpty(t *testing.T) {
	series, err := ReadSeries(filepath.Join(t.TempDir(), "patches"))
	if err != nil || len(series) != 0 {
		t.Fatalf("ReadSeries = %v, %v", series, err)
	}
}

func TestPatchErrorUnwraps(t *testing.T) {
	tree, pdir := t.TempDir(), t.TempDir()
	writeFiles(t, tree, map[string]string{"init/main.c": "other\n"})
	writeFiles(t, pdir, map[string]string{"p.patch": quiltPatch, "series": "p.patch\n"})
	series, _ := ReadSeries(pdir)
	var pe *PatchError
	if err := Apply(tree, series); !errors.As(err, &pe) || pe.Hunk != 1 {
		t.Fatalf("err = %v, want a PatchError for hunk 1", err)
	}
}

func TestMakefileVersion(t *testing.T) {
	tests := []struct{ makefile, want string }{
		{"# SPDX\nVERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\nEXTRAVERSION =\nNAME = Baby Opossum Posse\n", "6.12.117"},
		{"VERSION = 6\nPATCHLEVEL = 13\nSUBLEVEL = 0\nEXTRAVERSION = -rc1\n", "6.13-rc1"},
		{"VERSION = 6\nPATCHLEVEL = 13\nSUBLEVEL = 0\nEXTRAVERSION =\n", "6.13"},
		{"all:\n\techo\n", ""},
		{"VERSION = 6\nPATCHLEVEL = 1\nEXTRAVERSION = $(shell rm -rf /)\n", ""},
		// The version names dist's files and the release tag: only a plain suffix.
		{"VERSION = 6\nPATCHLEVEL = 1\nEXTRAVERSION = -a;b\n", ""},
		{"VERSION = 6\nPATCHLEVEL = 1\nEXTRAVERSION = -\x1b[2J\n", ""},
		{"VERSION = 6\nPATCHLEVEL = 1\nEXTRAVERSION = -rc1+debian~1\n", "6.1-rc1+debian~1"},
	}
	for _, tt := range tests {
		got, err := MakefileVersion(strings.NewReader(tt.makefile))
		if tt.want == "" {
			if err == nil {
				t.Errorf("MakefileVersion(%q) = %q, want an error", tt.makefile, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("MakefileVersion(%q) = %q, %v; want %q", tt.makefile, got, err, tt.want)
		}
	}
}

func TestTouched(t *testing.T) {
	const rename = "diff --git a/old/name.c b/new/name.c\nsimilarity index 100%\nrename from old/name.c\nrename to new/name.c\n"
	const remove = "diff --git a/gone.c b/gone.c\ndeleted file mode 100644\nindex ce01362..0000000\n--- a/gone.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-hello\n"
	tests := []struct {
		name    string
		series  string
		patches map[string]string
		want    string
	}{
		{"nothing", "", nil, ""},
		{"quilt and git patches, each file once", "1.patch\n2.patch\n3.patch\n", map[string]string{"1.patch": quiltPatch, "2.patch": gitPatch, "3.patch": quiltPatch}, "init/main.c new.txt"},
		{"a rename names both ends", "r.patch\n", map[string]string{"r.patch": rename}, "new/name.c old/name.c"},
		{"a deletion", "d.patch\n", map[string]string{"d.patch": remove}, "gone.c"},
		{"strip level 0", "p0.patch -p0\n", map[string]string{"p0.patch": "--- fs/x.c\n+++ fs/x.c\n@@ -1 +1 @@\n-a\n+b\n"}, "fs/x.c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.patches)
			writeFiles(t, dir, map[string]string{"series": tt.series})
			series, err := ReadSeries(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Touched(t.TempDir(), series)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("Touched = %q, want %q", got, tt.want)
			}
		})
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"series": "evil.patch\n", "evil.patch": "--- a/../../etc/passwd\n+++ b/../../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n"})
	series, _ := ReadSeries(dir)
	if _, err := Touched(t.TempDir(), series); err == nil || !strings.Contains(err.Error(), "outside the tree") {
		t.Errorf("a path outside the tree: %v", err)
	}
}
