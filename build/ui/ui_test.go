package ui

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestProgressSilentWhenNotATerminal(t *testing.T) {
	// Standard error is a file, as in CI logs: nothing may be printed to it.
	log, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	saved := os.Stderr
	os.Stderr = log
	defer func() { os.Stderr = saved }()
	p := NewProgress("download")
	p.Update(1, 2)
	p.Text("x")
	p.Done()
	s := NewLineStatus("make")
	if n, err := s.Write([]byte("CC a.o\n")); n != 7 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	s.p.Done()
	os.Stderr = saved
	if data, _ := os.ReadFile(log.Name()); len(data) > 0 {
		t.Errorf("printed to a non-terminal standard error: %q", data)
	}
}

func TestProgressDraws(t *testing.T) {
	var out bytes.Buffer
	p := &Progress{w: &out, label: "download linux.tar.xz"}
	p.Update(3<<20, 6<<20)
	if !strings.Contains(out.String(), "download linux.tar.xz  3.0 MiB / 6.0 MiB   50%") {
		t.Errorf("progress line %q", out.String())
	}
	s := &LineStatus{p: &Progress{w: &out, label: "make"}}
	s.Write([]byte("  CC      init/main.o\n  CC      kernel/fo"))
	if !strings.Contains(out.String(), "make  [1]   CC      init/main.o") {
		t.Errorf("status line %q", out.String())
	}
	p.Done()
	if !strings.HasSuffix(out.String(), "\r\033[K") {
		t.Error("Done did not clear the line")
	}
}

// TestVisible: what a hostile guest prints to take over a terminal comes out as plain text.
func TestVisible(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text\twith a tab\nand lines\n", "plain text\twith a tab\nand lines\n"},
		{"héllo wörld ✓", "héllo wörld ✓"},
		{"\x1b]0;pwned title\x07", `\x1b]0;pwned title\x07`},
		{"\x1b]52;c;cm0gLXJmIH4K\x07", `\x1b]52;c;cm0gLXJmIH4K\x07`}, // OSC 52: a clipboard write
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"\x1b[6n", `\x1b[6n`},   // a cursor position query: the terminal would type its answer
		{"\u009b6n", `\u009b6n`}, // the same as a C1 control
		{"line\r\n", "line\n"},
		{"over\rwrite", `over\x0dwrite`},
		{"abc\u202edcba", `abc\u202edcba`},
		{"bad \xff\xfe bytes", `bad \xff\xfe bytes`},
		{"\x00\x7f", `\x00\x7f`},
	} {
		if got := Visible(c.in); got != c.want {
			t.Errorf("Visible(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzVisible(f *testing.F) {
	f.Add("\x1b]0;t\x07 \u009b \r\n \xff")
	f.Fuzz(func(t *testing.T, in string) {
		out := Visible(in)
		if !utf8.ValidString(out) {
			t.Fatalf("Visible(%q) = %q: not UTF-8", in, out)
		}
		if i := strings.IndexFunc(out, needsEscape); i >= 0 {
			t.Fatalf("Visible(%q) = %q keeps %q", in, out, out[i:])
		}
	})
}
