package xbps_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/xbps"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

func TestUnpackModesLinksParents(t *testing.T) {
	data, _, err := xbpstest.Build(xbpstest.Package{
		Pkgver:  "demo-1.0_1",
		Install: "#!/bin/sh\necho hi\n",
		Files: map[string]xbpstest.File{
			"./usr/bin/demo":        {Data: []byte("#!/bin/sh\n"), Mode: 0o4755},
			"./usr/bin/demo-link":   {Link: "demo"},
			"./usr/lib/abs-link":    {Link: "/usr/bin/demo"},
			"./usr/share/demo/a":    {Data: []byte("a"), Mode: 0o600},
			"./usr/share/demo/hard": {Hardlink: "./usr/share/demo/a"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/demo"), []byte("old"), 0o444) // replaced, like xbps's UNLINK
	c, err := xbps.Unpack(context.Background(), bytes.NewReader(data), attacktest.OpenRoot(t, root))
	if err != nil {
		t.Fatal(err)
	}
	if c.Package.Pkgver != "demo-1.0_1" || string(c.Install) != "#!/bin/sh\necho hi\n" || len(c.Paths) != 5 {
		t.Fatalf("contents: %+v", c)
	}
	fi, err := os.Stat(filepath.Join(root, "usr/bin/demo"))
	// The setuid bit is for the image, never on the host, where it would be real.
	if err != nil || fi.Mode()&os.ModeSetuid != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("setuid file on the host: %v %v", fi.Mode(), err)
	}
	if m := c.Modes["/usr/bin/demo"]; m != 0o4755 {
		t.Errorf("setuid file's mode for the image: %v", m)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "usr/bin/demo")); string(got) != "#!/bin/sh\n" {
		t.Errorf("existing file not replaced: %q", got)
	}
	if l, _ := os.Readlink(filepath.Join(root, "usr/lib/abs-link")); l != "/usr/bin/demo" {
		t.Errorf("absolute symlink kept as is (it points inside the guest): %q", l)
	}
	a, _ := os.Stat(filepath.Join(root, "usr/share/demo/a"))
	h, _ := os.Stat(filepath.Join(root, "usr/share/demo/hard"))
	if !os.SameFile(a, h) || a.Mode().Perm() != 0o600 {
		t.Errorf("hard link or mode wrong: %v %v", a.Mode(), os.SameFile(a, h))
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	reg := func(name string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}
	}
	cases := []struct {
		name  string
		files map[string]xbpstest.File
		raw   []*tar.Header
		want  string
	}{
		{"dotdot", nil, []*tar.Header{reg("./../escaped")}, "contains .."},
		{"nested dotdot", nil, []*tar.Header{reg("./usr/../../escaped")}, "contains .."},
		{"absolute", nil, []*tar.Header{reg("/etc/passwd")}, "does not start with ./"},
		{"bare relative", nil, []*tar.Header{reg("etc/passwd")}, "does not start with ./"},
		{"dot without slash", nil, []*tar.Header{reg(".hidden")}, "does not start with ./"},
		{"write through absolute symlink", map[string]xbpstest.File{"./etc": {Link: "/tmp"}}, []*tar.Header{reg("./etc/passwd")}, "symbolic link"},
		{"write through relative symlink", map[string]xbpstest.File{"./lnk": {Link: "../../.."}}, []*tar.Header{reg("./lnk/x")}, "symbolic link"},
		{"hard link outside", nil, []*tar.Header{{Name: "./h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}, "outside"},
		{"hard link to symlink", map[string]xbpstest.File{"./s": {Link: "/etc/shadow"}}, []*tar.Header{{Name: "./t", Typeflag: tar.TypeLink, Linkname: "./s"}}, "not a regular file"},
		{"device", nil, []*tar.Header{{Name: "./dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8}}, "not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, _, err := xbpstest.Build(xbpstest.Package{Pkgver: "evil-1_1", Files: c.files, Raw: c.raw})
			if err != nil {
				t.Fatal(err)
			}
			parent := t.TempDir()
			root := filepath.Join(parent, "root")
			os.Mkdir(root, 0o755)
			_, err = xbps.Unpack(context.Background(), bytes.NewReader(data), attacktest.OpenRoot(t, root))
			var ue *xbps.UnsafeEntryError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an UnsafeEntryError with %q", err, c.want)
			}
			entries, _ := os.ReadDir(parent)
			if len(entries) != 1 {
				t.Errorf("something was written beside the root: %v", entries)
			}
		})
	}
}

func TestUnpackRejectsNonPackages(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("not a tar at all, not compressed either......"), {0x28, 0xb5, 0x2f, 0xfd, 0, 0}} {
		if _, err := xbps.Unpack(context.Background(), bytes.NewReader(data), attacktest.OpenRoot(t, t.TempDir())); err == nil {
			t.Errorf("%q accepted as a package", data)
		}
	}
}

func FuzzUnpack(f *testing.F) {
	ok, _, _ := xbpstest.Build(xbpstest.Package{Pkgver: "a-1_1", Files: map[string]xbpstest.File{"./x/y": {Data: []byte("z")}, "./l": {Link: "x"}}})
	f.Add(ok)
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		root := filepath.Join(parent, "root")
		os.Mkdir(root, 0o755)
		c, err := xbps.Unpack(context.Background(), bytes.NewReader(data), attacktest.OpenRoot(t, root))
		if entries, _ := os.ReadDir(parent); len(entries) != 1 {
			t.Fatalf("wrote outside the root: %v", entries)
		}
		if err != nil {
			return
		}
		// An accepted package leaves no setuid file on the host and no name outside the root.
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if fi, err := os.Lstat(p); err == nil && fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
				t.Fatalf("%s is %v on the host", p, fi.Mode())
			}
			return nil
		})
		for _, p := range c.Paths {
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
				t.Fatalf("path %q", p)
			}
		}
	})
}

func FuzzReadRepodata(f *testing.F) {
	for _, p := range []string{"Encoded14-void-user-repository/x86_64/x86_64-repodata", "Gigahawk-xbps_libselinux/x86_64-repodata"} {
		if data, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "fixtures", "xbps", p)); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := xbps.ReadRepodata(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What an accepted index names can be used as a file name and a cache path.
		for name, p := range rd.Index {
			if p.Name != name {
				t.Fatalf("entry %q holds %q", name, p.Pkgver)
			}
			if ident.SHA256(p.FilenameSHA256) != nil || ident.Name("pkgver", p.Pkgver) != nil || ident.Name("arch", p.Arch) != nil {
				t.Fatalf("entry %q: unsafe identifiers %q %q %q", name, p.FilenameSHA256, p.Pkgver, p.Arch)
			}
		}
	})
}
