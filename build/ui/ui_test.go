package ui

import (
	"bytes"
	"os"
	"strings"
	"testing"
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
