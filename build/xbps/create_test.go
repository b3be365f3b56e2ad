package xbps_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/simple-uml/simple-uml/build/xbps"
)

func file(data string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(data), Mode: 0o644} }
func link(to string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(to), Mode: fs.ModeSymlink | 0o777}
}

// TestReadPayloadOrderAndTargets: the walk is xbps-create's (each folder's names in reverse byte
// order, contents before their folder: "a/" sorts before "a-b" by name, after it as a whole path),
// and each link's files.plist target is what xbps-create records for it.
func TestReadPayloadOrderAndTargets(t *testing.T) {
	fsys := fstest.MapFS{
		"a/b":           file("b"),
		"a-b":           file("ab"),
		"lib/x":         file("x"),
		"usr/lib":       link("../lib"),              // a link to a folder
		"usr/bin/rel":   link("tool"),                // no "./": joined with the link's folder
		"usr/bin/dots":  link("../lib/x"),            // resolves through usr/lib to /lib/x
		"usr/bin/gone":  link("../nothing/here"),     // does not resolve: kept as written
		"usr/bin/abs":   link("//usr///bin/tool"),    // absolute: slashes squeezed
		"usr/bin/out":   link("../../../../etc/pwd"), // leads out of the folder: kept as written
		"usr/bin/loop1": link("./loop2"),
		"usr/bin/loop2": link("./loop1"),
		"usr/bin/afile": link("../../a-b/x"), // a file used as a folder
		"top":           link("usr/bin/tool"),
	}
	entries, err := xbps.ReadPayload(fsys)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	targets := map[string]string{}
	for _, e := range entries {
		order = append(order, e.Path)
		if e.Kind == xbps.KindLink {
			targets[e.Path] = e.Target
		}
	}
	wantOrder := []string{"./usr/lib", "./usr/bin/rel", "./usr/bin/out", "./usr/bin/loop2", "./usr/bin/loop1", "./usr/bin/gone",
		"./usr/bin/dots", "./usr/bin/afile", "./usr/bin/abs", "./usr/bin", "./usr", "./top", "./lib/x", "./lib", "./a-b", "./a/b", "./a"}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Errorf("order\n got %q\nwant %q", order, wantOrder)
	}
	wantTargets := map[string]string{
		"./usr/lib": "/lib", "./usr/bin/rel": "/usr/bin/tool", "./usr/bin/dots": "/lib/x", "./usr/bin/gone": "../nothing/here",
		"./usr/bin/abs": "/usr/bin/tool", "./usr/bin/out": "../../../../etc/pwd", "./usr/bin/loop1": "./loop2",
		"./usr/bin/loop2": "./loop1", "./usr/bin/afile": "../../a-b/x", "./top": "/usr/bin/tool",
	}
	if !reflect.DeepEqual(targets, wantTargets) {
		t.Errorf("targets\n got %v\nwant %v", targets, wantTargets)
	}
	sum := sha256.Sum256([]byte("ab"))
	if e := entries[14]; e.Kind != xbps.KindFile || e.Size != 2 || e.SHA256 != hex.EncodeToString(sum[:]) || e.Mode != 0o644 {
		t.Errorf("a-b: %+v", e)
	}
}

func TestReadPayloadRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"an INSTALL at the top", fstest.MapFS{"INSTALL": file("#!/bin/sh")}, "install, remove"},
		{"props.plist at the top", fstest.MapFS{"props.plist": file("")}, "package's own"},
		{"a named pipe", fstest.MapFS{"run/fifo": {Mode: fs.ModeNamedPipe | 0o600}}, "named pipe"},
		{"a device", fstest.MapFS{"dev/sda": {Mode: fs.ModeDevice | 0o600}}, "device"},
		{"a link to the top", fstest.MapFS{"usr/root": link("../")}, "top of the payload"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := xbps.ReadPayload(c.fsys); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
	// An INSTALL below the top is an ordinary file.
	if _, err := xbps.ReadPayload(fstest.MapFS{"usr/share/x/INSTALL": file("")}); err != nil {
		t.Error(err)
	}
}

func TestNewPackageChecks(t *testing.T) {
	payload, err := xbps.ReadPayload(fstest.MapFS{"etc/a.conf": file("a"), "etc/l.conf": link("a.conf")})
	if err != nil {
		t.Fatal(err)
	}
	good := func() *xbps.NewPackage {
		return &xbps.NewPackage{Pkgver: "a-1.0_1", Arch: "x86_64", ShortDesc: "a", Payload: payload, ConfFiles: []string{"/etc/a.conf"}}
	}
	if _, err := good().Props(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(*xbps.NewPackage)
		want string
	}{
		{"pkgver without revision", func(p *xbps.NewPackage) { p.Pkgver = "a-1.0" }, "name-version_revision"},
		{"pkgver with a slash", func(p *xbps.NewPackage) { p.Pkgver = "a/b-1.0_1" }, "pkgver"},
		{"no architecture", func(p *xbps.NewPackage) { p.Arch = "" }, "architecture"},
		{"no short_desc", func(p *xbps.NewPackage) { p.ShortDesc = " " }, "short_desc"},
		{"a dependency with a blank", func(p *xbps.NewPackage) { p.RunDepends = []string{"foo >=1.0_1"} }, "run_depends"},
		{"an empty conflict", func(p *xbps.NewPackage) { p.Conflicts = []string{""} }, "conflicts"},
		{"provides not a pkgver", func(p *xbps.NewPackage) { p.Provides = []string{"awk"} }, "awk-1.0_1"},
		{"a conf file not in the payload", func(p *xbps.NewPackage) { p.ConfFiles = []string{"/etc/b.conf"} }, "not a regular file"},
		{"a conf file that is a link", func(p *xbps.NewPackage) { p.ConfFiles = []string{"/etc/l.conf"} }, "not a regular file"},
		{"a relative conf file", func(p *xbps.NewPackage) { p.ConfFiles = []string{"etc/a.conf"} }, "absolute path"},
		{"an alternative without target", func(p *xbps.NewPackage) { p.Alternatives = map[string][]string{"vi": {"/usr/bin/vi"}} }, "linkpath:target"},
		{"an alternatives group with ':'", func(p *xbps.NewPackage) { p.Alternatives = map[string][]string{"v:i": {"/a:/b"}} }, "group"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := good()
			c.edit(p)
			if _, err := p.Props(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
			if err := xbps.WritePackage(&bytes.Buffer{}, p); err == nil {
				t.Error("WritePackage wrote it")
			}
		})
	}
}
