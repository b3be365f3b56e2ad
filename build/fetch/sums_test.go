package fetch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseSums(t *testing.T) {
	good := strings.Repeat("ab", 32)
	tests := []struct {
		name, in string
		want     string // error text, "" for ok
	}{
		{"text and binary mode", good + "  a\n" + good + " *b\n", ""},
		{"upper case, CRLF, blank lines", strings.ToUpper(good) + "  linux-4.0.tar.xz\r\n\n  \n", ""},
		{"one space", good + " a\n", "not"},
		{"not hex", strings.Repeat("zz", 32) + "  a\n", "not hex"},
		{"short sum", "d86e  a\n", "not"},
		{"a path", good + "  ../etc/passwd\n", "file name"},
		{"a folder", good + "  v4.x/linux-4.0.tar.xz\n", "file name"},
		{"twice", good + "  a\n" + good + "  a\n", "twice"},
		{"empty", "", "no files"},
		{"only blank lines", "\n\r\n  \n", "no files"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sums, err := ParseSums("SHA256SUMS", []byte(tt.in))
			if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("ParseSums(%q) = %v, want %q", tt.in, err, tt.want)
			}
			for name, sum := range sums {
				if sum != strings.ToLower(sum) || len(sum) != 64 || name == "" {
					t.Errorf("%q -> %q", name, sum)
				}
			}
		})
	}
}

// TestParseSumsRealLists reads kernel.org's real signed lists (the signed text; the signature is
// kernelorg's test): every line is taken.
func TestParseSumsRealLists(t *testing.T) {
	for _, name := range []string{"v4.x-sha256sums.asc", "git-small-sha256sums.asc"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "fixtures", "kernelorg", name))
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(data), "\n") {
			if len(l) > 66 && strings.Trim(l[:64], "0123456789abcdef") == "" {
				lines = append(lines, l)
			}
		}
		sums, err := ParseSums(name, []byte(strings.Join(lines, "\n")))
		if err != nil || len(sums) != len(lines) || len(sums) < 10 {
			t.Errorf("%s: %d of %d lines, %v", name, len(sums), len(lines), err)
		}
	}
}

func FuzzParseSums(f *testing.F) {
	f.Add([]byte(strings.Repeat("ab", 32) + "  a\n"))
	f.Add([]byte("\n\r\n  \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sums, err := ParseSums("fuzz", data)
		if err != nil {
			return
		}
		for name, sum := range sums {
			if len(sum) != 64 || strings.ContainsAny(name, "/\x00") || sum != strings.ToLower(sum) {
				t.Fatalf("accepted entry %q -> %q", name, sum)
			}
		}
	})
}
