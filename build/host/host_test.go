package host

import (
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
