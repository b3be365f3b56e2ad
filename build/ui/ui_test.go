package ui

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressSilentWhenNotATerminal(t *testing.T) {
	// Tests run with stderr redirected, as CI logs are: nothing may be printed.
	p := NewProgress("download")
	p.Update(1, 2)
	p.Text("x")
	p.Done()
	s := NewLineStatus("make")
	if n, err := s.Write([]byte("CC a.o\n")); n != 7 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
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
