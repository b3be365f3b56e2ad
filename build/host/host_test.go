package host

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		set  []Tool
		want []string // parts of the error; nil means no error
	}{
		{"present", []Tool{{Name: "sh", Debian: "dash"}}, nil},
		{"missing program", []Tool{{"surely-not-installed-tool", "testing", "pkg-deb", "pkg-fed", "pkg-arch"}},
			[]string{"surely-not-installed-tool (testing)", "apt-get install pkg-deb", "dnf install pkg-fed", "pacman -S pkg-arch"}},
		{"missing file", []Tool{{"/nonexistent/header.h", "headers", "libx-dev", "x-devel", "x"}}, []string{"/nonexistent/header.h", "libx-dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.set)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error for a missing tool")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

// TestSbinToolsForOrdinaryUsers: Debian gives an ordinary user a PATH without /usr/sbin, where
// e2fsprogs's mke2fs and debugfs live. They are found there, and the doctor says where.
func TestSbinToolsForOrdinaryUsers(t *testing.T) {
	var tool string
	for _, name := range []string{"mke2fs", "debugfs"} {
		for _, d := range sbin {
			if _, err := os.Stat(filepath.Join(d, name)); err == nil {
				tool = name
			}
		}
	}
	if tool == "" {
		if os.Getenv("SUML_E2E") == "1" {
			t.Fatal("e2fsprogs is not installed here; CI's machine must have it (apt-get install e2fsprogs)")
		}
		t.Skip("e2fsprogs is not installed in /usr/sbin or /sbin here")
	}
	t.Setenv("PATH", "/usr/bin:/bin")
	p, err := LookPath(tool)
	if err != nil || !strings.HasSuffix(p, "/sbin/"+tool) {
		t.Fatalf("LookPath(%s) = %q, %v", tool, p, err)
	}
	if err := Check(Image); err != nil && strings.Contains(err.Error(), tool) {
		t.Errorf("Check says %s is missing: %v", tool, err)
	}
	where := strings.Join(Where(Image), "\n")
	if !strings.Contains(where, tool+": "+p+" (not on your PATH") {
		t.Errorf("Where:\n%s", where)
	}
	if _, err := LookPath("surely-not-installed-tool"); err == nil {
		t.Error("a missing tool was found")
	}
}

func TestVersions(t *testing.T) {
	got := Versions(context.Background(), [][]string{{"gcc", "--version"}, {"no-such-tool-here", "-V"}, {"false"}})
	if !strings.HasPrefix(got["gcc"], "gcc") || strings.Contains(got["gcc"], "\n") {
		t.Errorf("gcc: %q; want its first line", got["gcc"])
	}
	if !strings.HasPrefix(got["no-such-tool-here"], "unknown: ") || !strings.HasPrefix(got["false"], "unknown: ") {
		t.Errorf("a missing tool %q, a failing one %q; want both unknown with the reason", got["no-such-tool-here"], got["false"])
	}
}
