package ktap

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestSuites reads the suites from real consoles of 6.12 UML kernels: a kunit.action=list boot, a
// run of every suite (what a kernel before 6.6 prints when asked for a list), and a run whose filter
// selected nothing.
func TestSuites(t *testing.T) {
	tests := []struct {
		console string
		want    []string
	}{
		{"kunit-6.12.118-um-list.console", []string{"example_init", "example", "list-kunit-test", "hlist", "klist"}},
		{"kunit-6.12.117-um.console", []string{"example_init", "example", "list-kunit-test", "hlist", "klist"}},
		{"kunit-6.12.118-um-nomatch.console", nil},
	}
	for _, tt := range tests {
		data, err := os.ReadFile(filepath.Join("testdata", tt.console))
		if err != nil {
			t.Fatal(err)
		}
		if got := Suites(string(data)); !slices.Equal(got, tt.want) {
			t.Errorf("%s: suites %q, want %q", tt.console, got, tt.want)
		}
	}
	// Before the KTAP header, a console's lines are the boot's, whatever they look like.
	if got := Suites("random.seed\nKTAP version 1\nsuite.test\nreboot: System halted\n"); !slices.Equal(got, []string{"suite"}) {
		t.Errorf("suites %q, want [suite]", got)
	}
}
