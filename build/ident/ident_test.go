package ident

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

func TestSHA256(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{good, true},
		{strings.ToUpper(good), false},
		{good[:63], false},
		{good + "0", false},
		{"/././" + good[5:], false},
		{"../../../../victims/.profile" + good[28:], false},
		{good[:63] + "\n", false},
		{"", false},
	} {
		if err := SHA256(tc.in); (err == nil) != tc.ok {
			t.Errorf("SHA256(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestName(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"busybox-static-1.36.1_1", true},
		{"gtk+3-3.24.41_1", true},
		{"libstdc++-13.2.0_1", true},
		{"x86_64-musl", true},
		{"simple-uml-linux-6.12.117-1-um-x86_64.tar.xz", true},
		{"", false},
		{".", false},
		{"..", false},
		{"-rf", false},
		{"a/b", false},
		{"a b", false},
		{"a\nb", false},
		{"a\x00b", false},
		{"a\\b", false},
		{"é", false},
		{strings.Repeat("a", 256), false},
	} {
		if err := Name("pkgver", tc.in); (err == nil) != tc.ok {
			t.Errorf("Name(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func FuzzName(f *testing.F) {
	f.Add("busybox-1.36.1_1")
	f.Add("../x")
	f.Fuzz(func(t *testing.T, s string) {
		if Name("x", s) != nil {
			return
		}
		if strings.ContainsAny(s, "/\\ \n\t\x00") || s == "." || s == ".." || strings.HasPrefix(s, "-") {
			t.Fatalf("Name accepted %q", s)
		}
	})
}

func TestMemory(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64 // 0: refused
	}{
		{"256M", 256 << 20},
		{"1G", 1 << 30},
		{"32768K", 32 << 20},
		{"64G", 64 << 30},
		{"32M", 32 << 20},
		{"31M", 0},
		{"65G", 0},
		{"128M ubd1=/etc/shadow", 0},
		{"128M\nubd1=x", 0},
		{"abc", 0},
		{"256", 0},
		{"256m", 0},
		{"0256M", 0},
		{"-1G", 0},
		{"", 0},
		{"M", 0},
		{"99999999999G", 0},
		{"17179869248G", 0}, // (2^34+64) << 30 wraps to 64G in 64 bits
		{"1.5G", 0},
		{"256MB", 0},
	} {
		got, err := Memory("boot.mem", c.in)
		if got != c.want || (err == nil) != (c.want != 0) {
			t.Errorf("Memory(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
		if err != nil && (!strings.Contains(err.Error(), "boot.mem") || !strings.Contains(err.Error(), "256M")) {
			t.Errorf("Memory(%q): the error names neither the setting nor the fix: %v", c.in, err)
		}
	}
}

// FuzzMemory: whatever a setting holds, Memory either refuses it or returns a size within its bounds
// for a string that is digits and one unit, nothing the kernel command line could split.
func FuzzMemory(f *testing.F) {
	for _, s := range []string{"256M", "1G", "128M ubd1=/x", "17179869248G", "0M", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		size, err := Memory("mem", s)
		if err != nil {
			return
		}
		if size < MinMemory || size > MaxMemory {
			t.Fatalf("Memory(%q) = %d, out of bounds", s, size)
		}
		if strings.IndexFunc(s[:len(s)-1], func(r rune) bool { return r < '0' || r > '9' }) >= 0 || !strings.ContainsRune("KMG", rune(s[len(s)-1])) {
			t.Fatalf("Memory(%q) accepted a string that is not digits and a unit", s)
		}
	})
}

func TestUnknown(t *testing.T) {
	for _, tc := range []struct {
		what, name, where string
		known             []string
		want              string
	}{
		{"lab", "x", "labs/", []string{"client-server", "honeypot", "router"}, `unknown lab "x" in labs/: client-server, honeypot, router`},
		{"series", "9.9", "kernel.lock", []string{"6.12"}, `unknown series "9.9" in kernel.lock: 6.12`},
		{"recipe", "r", "/tmp/none", nil, `unknown recipe "r": /tmp/none has none`},
		{"lab", "a\x1b[2Jb", "labs/", []string{"router"}, `unknown lab "a\x1b[2Jb" in labs/: router`},
		{"lab", strings.Repeat("y", 100), "labs/", []string{"router"}, `unknown lab "` + strings.Repeat("y", 80) + `..." in labs/: router`},
	} {
		err := Unknown(tc.what, tc.name, tc.where, tc.known)
		if err.Error() != tc.want {
			t.Errorf("Unknown(%q, %q) = %q, want %q", tc.what, tc.name, err, tc.want)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Unknown(%q, %q) is not an fs.ErrNotExist", tc.what, tc.name)
		}
	}
}
