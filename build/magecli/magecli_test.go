package magecli

import (
	"strings"
	"testing"
)

func TestFirstTarget(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"kernel"}, "kernel"},
		{[]string{"-v", "rootfs", "-recipe=void-musl"}, "rootfs"},
		{[]string{"-t", "5m", "boot"}, "boot"},
		{[]string{"-t=5m", "-v=true", "boot"}, "boot"},
		{[]string{"-l"}, ""},
		{[]string{"-h", "kernel"}, ""},
		{[]string{"pkg", "template.toml"}, "pkg"},
	}
	for _, tt := range tests {
		if got := FirstTarget(tt.args); got != tt.want {
			t.Errorf("FirstTarget(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	targets := []string{"kernel", "labTest", "boot"}
	tests := []struct {
		args []string
		want string // in the error; "" for none
	}{
		{[]string{"kernel"}, ""},
		{[]string{"labtest", "router"}, ""},
		{[]string{"-v", "boot"}, ""},
		{[]string{"-l"}, ""},
		{[]string{"kernl"}, `unknown target "kernl"; simple-uml's targets are: boot, kernel, labTest`},
	}
	for _, tt := range tests {
		err := CheckTarget(tt.args, targets)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%q: %v, want %q", tt.args, err, tt.want)
		}
	}
}
