package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRewriteLock(t *testing.T) {
	const lock = `# the pinned kernel
version = "6.12.117" # a comment stays
sha256 = "aa"
released = "2026-11-14"

[series."6.1"]
version = "6.1.150"
sha256 = "bb"
released = "2026-11-01"
`
	pin := KernelPin{Version: "6.12.120", SHA256: "cc", Released: "2026-12-01"}
	tests := []struct {
		name, data, series string
		want               []string // in the result
		wantErr            string
	}{
		{"the default series", lock, "", []string{`version = "6.12.120" # a comment stays`, `sha256 = "cc"`, `version = "6.1.150"`}, ""},
		{"another series", lock, "6.1", []string{`version = "6.12.117" # a comment stays`, "[series.\"6.1\"]\nversion = \"6.12.120\""}, ""},
		{"a series added", lock, "6.6", []string{"[series.\"6.6\"]\nversion = \"6.12.120\"\nsha256 = \"cc\"", `version = "6.1.150"`}, ""},
		{"a lock laid out otherwise", "version = '6.12.117'\nsha256 = \"aa\"\nreleased = \"x\"\n", "", nil, "no version line to rewrite"},
	}
	for _, tt := range tests {
		out, err := RewriteLock([]byte(tt.data), tt.series, pin)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: result lacks %q:\n%s", tt.name, w, out)
			}
		}
		if !strings.HasPrefix(string(out), "# the pinned kernel\n") {
			t.Errorf("%s: the comment at the top went", tt.name)
		}
	}
}

// TestWriteLock: the lock file gets the new pin in place; a lock the rewrite cannot follow is
// refused naming the file, and left as it was.
func TestWriteLock(t *testing.T) {
	pin := KernelPin{Version: "6.12.120", SHA256: "cc", Released: "2026-12-01"}
	tests := []struct {
		name, data, want, wantErr string
	}{
		{"rewritten", "# pins\nversion = \"6.12.117\"\nsha256 = \"aa\"\nreleased = \"\"\n", "# pins\nversion = \"6.12.120\"\nsha256 = \"cc\"\nreleased = \"2026-12-01\"\n", ""},
		{"laid out otherwise", "version = '6.12.117'\nsha256 = \"aa\"\nreleased = \"x\"\n", "version = '6.12.117'\nsha256 = \"aa\"\nreleased = \"x\"\n", "kernel.lock: no version line"},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "kernel.lock")
		os.WriteFile(path, []byte(tt.data), 0o644)
		err := WriteLock(path, "", pin)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.wantErr)
		}
		if got, _ := os.ReadFile(path); string(got) != tt.want {
			t.Errorf("%s: the lock:\n%s\nwant:\n%s", tt.name, got, tt.want)
		}
	}
	if err := WriteLock(filepath.Join(t.TempDir(), "kernel.lock"), "", pin); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no lock file: %v", err)
	}
}
