// Package attacktest holds what the attack tests share: canary files outside the folder under test,
// whose bytes and times must survive every hostile input, and roots to hand confined code.
package attacktest

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Canary is a file outside the folder under test that no input may read into an output, change,
// replace or remove.
type Canary struct {
	Path  string
	Data  []byte
	mtime time.Time
}

// NewCanary writes a canary file named name into dir (made if missing), with content that says what
// it is, so a leak of it into an output is found by searching for Data.
func NewCanary(t testing.TB, dir, name string) *Canary {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &Canary{Path: filepath.Join(dir, name), Data: []byte("CANARY " + name + " " + t.Name() + "\n")}
	if err := os.WriteFile(c.Path, c.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(c.Path, old, old); err != nil {
		t.Fatal(err)
	}
	c.mtime = old
	return c
}

// Check fails the test when the canary was changed, replaced or removed.
func (c *Canary) Check(t testing.TB) {
	t.Helper()
	fi, err := os.Lstat(c.Path)
	if err != nil {
		t.Fatalf("canary %s: %v", c.Path, err)
	}
	if !fi.Mode().IsRegular() {
		t.Fatalf("canary %s was replaced by a %s", c.Path, fi.Mode().Type())
	}
	data, err := os.ReadFile(c.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, c.Data) || !fi.ModTime().Equal(c.mtime) {
		t.Fatalf("canary %s was written: %q, mtime %s", c.Path, data, fi.ModTime())
	}
}

// NotIn fails the test when any regular file below dir holds the canary's content: the input made
// the pipeline read it.
func (c *Canary) NotIn(t testing.TB, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, c.Data) {
			t.Errorf("%s holds the canary %s", p, c.Path)
		}
		return nil
	})
}

// OpenRoot opens dir as an os.Root closed when the test ends.
func OpenRoot(t testing.TB, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// HostIPv4 is a non-loopback IPv4 address of this host: a guest that reaches it reaches the host's
// services bound to all addresses.
func HostIPv4(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	t.Fatal("this host has no non-loopback IPv4 address to test with")
	return ""
}
