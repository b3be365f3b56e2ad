package xbps_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/simple-uml/simple-uml/build/attacktest"
	"github.com/simple-uml/simple-uml/build/untar"
	"github.com/simple-uml/simple-uml/build/xbps"
	"github.com/simple-uml/simple-uml/build/xbps/proplib"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

func zstdOf(data []byte) []byte {
	var out bytes.Buffer
	zw, _ := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
	zw.Write(data)
	zw.Close()
	return out.Bytes()
}

func unzstd(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAttackTrailingData: data after the archive (inside the compressed stream, or after it) was
// accepted, where xbps and the host's decompressors refuse the file.
func TestAttackTrailingData(t *testing.T) {
	pkg, _, err := xbpstest.Build(xbpstest.Package{Pkgver: "a-1_1", Files: map[string]xbpstest.File{"./x": {Data: []byte("y")}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"garbage after the zstd stream":     append(append([]byte{}, pkg...), "GARBAGE!"...),
		"garbage after the tar, compressed": zstdOf(append(unzstd(t, pkg), "#!/bin/sh\nrm -rf ~\n"...)),
		"a second archive after the first":  zstdOf(append(unzstd(t, pkg), unzstd(t, pkg)...)),
		"more padding than any tar writes":  zstdOf(append(unzstd(t, pkg), make([]byte, 2<<20)...)),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := xbps.Unpack(context.Background(), bytes.NewReader(data), attacktest.OpenRoot(t, t.TempDir()))
			if err == nil || !strings.Contains(err.Error(), "reading package") {
				t.Fatalf("got %v", err)
			}
		})
	}
	t.Run("repodata", func(t *testing.T) {
		dir := t.TempDir()
		repo := xbpstest.Repo{Dir: dir, Arch: "x86_64"}
		if err := repo.WriteRepodata(map[string]any{}); err != nil {
			t.Fatal(err)
		}
		data := readFile(t, dir+"/x86_64-repodata")
		if _, err := xbps.ReadRepodata(bytes.NewReader(data)); err != nil {
			t.Fatalf("the untouched repodata: %v", err)
		}
		bad := zstdOf(append(unzstd(t, data), "GARBAGE"...))
		if _, err := xbps.ReadRepodata(bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "follows the end") {
			t.Fatalf("got %v", err)
		}
	})
}

// TestAttackEntryCount: a small package describing more entries than any real one is refused once it
// passes the limit (these entries create nothing, so the test is quick).
func TestAttackEntryCount(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		props, _ := proplib.Marshal(map[string]any{"pkgver": "a-1_1", "architecture": "x86_64"})
		tw.WriteHeader(&tar.Header{Name: "./props.plist", Mode: 0o644, Size: int64(len(props)), Typeflag: tar.TypeReg})
		tw.Write(props)
		for range untar.MaxEntries + 1 {
			if tw.WriteHeader(&tar.Header{Name: "./", Mode: 0o755, Typeflag: tar.TypeDir}) != nil {
				break
			}
		}
		tw.Close()
		pw.Close()
	}()
	_, err := xbps.Unpack(context.Background(), pr, attacktest.OpenRoot(t, t.TempDir()))
	pr.Close()
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("got %v", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
