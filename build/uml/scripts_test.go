package uml

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadScript(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "checks.sh")
	os.WriteFile(ok, []byte("#!/bin/sh\necho ok 1\n"), 0o755)
	big := filepath.Join(dir, "big.sh")
	os.WriteFile(big, bytes.Repeat([]byte("#"), maxScript+1), 0o755)
	tests := []struct {
		path string
		want string // in the error; "" for none
	}{
		{ok, ""},
		{filepath.Join(dir, "missing.sh"), "test.scripts, or -script"},
		{dir, "regular file"},
		{big, "64 KiB at most"},
	}
	for _, tt := range tests {
		data, err := readScript(tt.path)
		if tt.want == "" && (err != nil || !strings.Contains(string(data), "echo ok")) {
			t.Errorf("%s: %q, %v", tt.path, data, err)
		}
		if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v, want %q", tt.path, err, tt.want)
		}
	}
}
