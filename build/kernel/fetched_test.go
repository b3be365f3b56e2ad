package kernel

import (
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// fetched is what InstallFetched is given: a release's kernel tarball and compressed image, already
// downloaded, and the manifest that describes them.
type fetched struct {
	m                   *manifest.Manifest
	kernelTar, imageZst string
}

// fetchedInputs are the parts of a release a test changes before the files are written: the kernel
// tarball's entries (name in the tarball -> content) and the image.
type fetchedInputs struct {
	tarball map[string]string
	image   []byte
}

func defaultFetchedInputs() fetchedInputs {
	in := fetchedInputs{tarball: map[string]string{}}
	for _, o := range Outputs {
		in.tarball[o.InRelease] = "release " + o.Name + "\n"
	}
	// A block of zeros between data, as an ext4 image has: the image is written sparse.
	in.image = append(append(bytes.Repeat([]byte("ext4"), 16<<10), make([]byte, 128<<10)...), bytes.Repeat([]byte("data"), 4<<10)...)
	return in
}

// writeFetched writes the release's kernel tarball and image and a manifest whose records list what
// they hold (the kernel's outputs under their names in dist/).
func writeFetched(t *testing.T, in fetchedInputs) fetched {
	t.Helper()
	dir := t.TempDir()
	m := &manifest.Manifest{Format: 2, Tag: "v6.12.117-1", Kernel: manifest.KernelRecord{Version: "6.12.117", Outputs: map[string]string{}}}
	var entries []artifact.Entry
	for name, body := range in.tarball {
		src := filepath.Join(dir, "src-"+strings.ReplaceAll(name, "/", "_"))
		writeFiles(t, dir, map[string]string{filepath.Base(src): body})
		entries = append(entries, artifact.Entry{Name: name, Source: src, Mode: 0o644})
		if dist, ok := InRelease()[name]; ok {
			m.Kernel.Outputs[dist] = digest.Bytes([]byte(body))
		}
	}
	f := fetched{m: m, kernelTar: filepath.Join(dir, "kernel.tar.xz"), imageZst: filepath.Join(dir, "image.ext4.zst")}
	if err := artifact.WriteFile(f.kernelTar, artifact.Xz, func(w io.Writer) error { return artifact.WriteTar(w, entries, time.Unix(0, 0)) }); err != nil {
		t.Fatal(err)
	}
	if err := artifact.WriteFile(f.imageZst, artifact.Zstd, func(w io.Writer) error { _, err := w.Write(in.image); return err }); err != nil {
		t.Fatal(err)
	}
	m.Rootfs = []manifest.RootfsRecord{{Recipe: "test", Arch: "x86_64", InputKey: "k", Outputs: map[string]manifest.Output{
		"test.ext4":    {SHA256: digest.Bytes(in.image), Size: int64(len(in.image))},
		"test.tar.zst": {SHA256: strings.Repeat("ab", 32), Size: 1},
	}}}
	return f
}

// oldDist is a dist/ holding an earlier install: a kernel, an image and their records.
func oldDist(t *testing.T) string {
	dist := t.TempDir()
	old := map[string]string{manifest.KernelRecordName: `{"version": "6.12.100"}`, "test.ext4": "old image", "test.json": `{"recipe": "test"}`}
	for _, o := range Outputs {
		old[o.Name] = "old " + o.Name
	}
	return writeFiles(t, dist, old)
}

// snapshot is every file in dir by name, with its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = string(data)
	}
	return out
}

// TestInstallFetched: a release's kernel and image are installed into dist/ with records boot
// trusts; a kernel tarball or image that is not what the manifest says (a hostile or a damaged
// release, or one of another layout) is refused, and dist/ is left exactly as it was.
func TestInstallFetched(t *testing.T) {
	cases := []struct {
		name string
		edit func(*fetchedInputs)
		fix  func(*fetched) // the manifest changed after the files were written
		want string         // in the error; "" installs
	}{
		{name: "installs"},
		{name: "tarball lacks an output of this layout", edit: func(in *fetchedInputs) { delete(in.tarball, "COPYING") }, want: "kernel tarball has no COPYING (release format 2)"},
		{name: "tarball entry outside the layout", edit: func(in *fetchedInputs) { in.tarball["../../victim"] = "x" }, want: `unexpected entry "../../victim"`},
		{name: "tarball differs from the record", fix: func(f *fetched) { f.m.Kernel.Outputs[LinuxName] = strings.Repeat("0", 64) }, want: "kernel tarball does not match the manifest"},
		{name: "record names a path", fix: func(f *fetched) { f.m.Kernel.Outputs["../linux"] = strings.Repeat("0", 64) }, want: "output name"},
		{name: "image differs from the record", fix: func(f *fetched) {
			o := f.m.Rootfs[0].Outputs["test.ext4"]
			o.SHA256 = strings.Repeat("0", 64)
			f.m.Rootfs[0].Outputs["test.ext4"] = o
		}, want: "image test.ext4 does not match the manifest"},
		{name: "image larger than its record", fix: func(f *fetched) {
			o := f.m.Rootfs[0].Outputs["test.ext4"]
			o.Size--
			f.m.Rootfs[0].Outputs["test.ext4"] = o
		}, want: "decompresses to more than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := defaultFetchedInputs()
			if c.edit != nil {
				c.edit(&in)
			}
			f := writeFetched(t, in)
			if c.fix != nil {
				c.fix(&f)
			}
			dist := oldDist(t)
			before := snapshot(t, dist)
			err := InstallFetched(context.Background(), dist, f.m, &f.m.Rootfs[0], f.kernelTar, f.imageZst)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v, want %q", err, c.want)
				}
				if after := snapshot(t, dist); !maps.Equal(before, after) {
					t.Errorf("a refused release changed dist/:\nbefore %v\nafter  %v", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkFetchedDist(t, dist, f, in)
		})
	}
}

// checkFetchedDist checks what a fetch left: the release's outputs and records, no temporary folder.
func checkFetchedDist(t *testing.T, dist string, f fetched, in fetchedInputs) {
	t.Helper()
	after := snapshot(t, dist)
	for _, o := range Outputs {
		if after[o.Name] != in.tarball[o.InRelease] {
			t.Errorf("%s holds %q", o.Name, after[o.Name])
		}
	}
	if after["test.ext4"] != string(in.image) {
		t.Error("the installed image is not the release's")
	}
	if len(after) != len(Outputs)+3 {
		t.Errorf("dist/ holds %d entries, want the outputs, the image and two records: %v", len(after), slices.Sorted(maps.Keys(after)))
	}
	kernelRec, err := manifest.ReadKernelRecord(dist)
	if err != nil || kernelRec.Version != f.m.Kernel.Version || kernelRec.CheckOutputs(dist) != nil {
		t.Errorf("kernel record %+v, %v", kernelRec, err)
	}
	var root manifest.RootfsRecord
	if err := files.ReadJSON(filepath.Join(dist, "test.json"), &root); err != nil {
		t.Fatal(err)
	}
	if len(root.Outputs) != 1 || root.CheckOutputs(dist) != nil {
		t.Errorf("root filesystem record lists %v; want the image alone, unchanged since it was written", root.Outputs)
	}
}
