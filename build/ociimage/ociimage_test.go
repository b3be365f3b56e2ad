package ociimage

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/simple-uml/simple-uml/build/instance"
	"github.com/simple-uml/simple-uml/build/uml"
)

// testInput is an image of stand-ins in dir: a dynamically linked host program as the kernel (its
// libraries go in too), an image and an entrypoint of a few bytes.
func testInput(t *testing.T, dir, image string) Input {
	t.Helper()
	for name, data := range map[string]string{"image.ext4": image, "entrypoint": "#!entrypoint"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Input{
		Entrypoint: filepath.Join(dir, "entrypoint"), Kernel: "/bin/true", Image: filepath.Join(dir, "image.ext4"),
		Spec:    instance.Spec{Name: "test", Recipe: "test", Ready: "login:", Options: uml.Options{Kernel: "/host/linux", Image: "/host/image", COW: "/host/cow", Mem: "256M"}},
		Version: "1.0", Epoch: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
	}
}

func buildImage(t *testing.T, in Input) v1.Image {
	t.Helper()
	img, err := build(context.Background(), in, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestWriteIsReproducible: the same inputs from another folder, umask and time zone give the same
// archive, byte for byte.
func TestWriteIsReproducible(t *testing.T) {
	var digests []v1.Hash
	var archives [][]byte
	for _, umask := range []int{0o022, 0o077} {
		old := syscall.Umask(umask)
		local := time.Local
		time.Local = time.FixedZone("test", umask*60)
		dir := t.TempDir()
		archive := filepath.Join(dir, "test.oci.tar")
		digest, err := Write(context.Background(), testInput(t, dir, "an image"), archive)
		syscall.Umask(old)
		time.Local = local
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(archive)
		if err != nil {
			t.Fatal(err)
		}
		digests, archives = append(digests, digest), append(archives, data)
	}
	if digests[0] != digests[1] || string(archives[0]) != string(archives[1]) {
		t.Errorf("two builds: %s and %s, archives equal: %v", digests[0], digests[1], string(archives[0]) == string(archives[1]))
	}
}

// TestNewImageKeepsTheKernelLayers: a new root filesystem image changes its own layer and the spec's
// (which holds its digest), none before them.
func TestNewImageKeepsTheKernelLayers(t *testing.T) {
	layerDigests := func(img v1.Image) []v1.Hash {
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		var out []v1.Hash
		for _, l := range layers {
			d, err := l.Digest()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
		return out
	}
	first := layerDigests(buildImage(t, testInput(t, t.TempDir(), "image one")))
	second := layerDigests(buildImage(t, testInput(t, t.TempDir(), "image two")))
	if len(first) != 5 || len(second) != 5 {
		t.Fatalf("layers: %d and %d, want 5 (libraries, entrypoint, kernel, image, spec)", len(first), len(second))
	}
	for i := range first {
		if same := first[i] == second[i]; same != (i < 3) {
			t.Errorf("layer %d: the same in both images: %v, want %v", i, same, i < 3)
		}
	}
}

// TestArchiveIsAnOCILayout reads the archive as podman does: an OCI layout whose one image has the
// reference name, runs the entrypoint as the image's user, and holds the kernel, its C library and
// a spec that names the image's own paths, under a state folder the user owns.
func TestArchiveIsAnOCILayout(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "test.oci.tar")
	in := testInput(t, dir, "an image")
	digest, err := Write(context.Background(), in, archive)
	if err != nil {
		t.Fatal(err)
	}
	unpacked := t.TempDir()
	if out, err := exec.Command("tar", "-xf", archive, "-C", unpacked).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	index, err := layout.ImageIndexFromPath(unpacked)
	if err != nil {
		t.Fatal(err)
	}
	// The layout folder beside the archive holds the same image.
	beside, err := layout.ImageIndexFromPath(LayoutDir(archive))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := beside.Image(digest); err != nil {
		t.Errorf("the layout folder %s: %v", LayoutDir(archive), err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest.Manifests) != 1 || manifest.Manifests[0].Digest != digest || manifest.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "localhost/simple-uml-test:1.0" {
		t.Fatalf("index: %+v, want one image %s named localhost/simple-uml-test:1.0", manifest.Manifests, digest)
	}
	img, err := index.Image(digest)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "1000:1000" || strings.Join(cfg.Config.Entrypoint, " ") != EntrypointPath || !cfg.Created.Time.Equal(in.Epoch) {
		t.Errorf("config: user %q, entrypoint %q, created %s", cfg.Config.User, cfg.Config.Entrypoint, cfg.Created.Time)
	}
	files := imageFiles(t, img)
	for _, want := range []string{"lib64/ld-linux-x86-64.so.2", "opt/simple-uml/linux", "opt/simple-uml/image.ext4", "usr/bin/simple-uml-guest"} {
		if _, ok := files[want]; !ok {
			t.Errorf("the image has no %s", want)
		}
	}
	if state := files["var/lib/simple-uml/"]; state.Uid != UID || state.Mode != 0o700 {
		t.Errorf("the state folder: uid %d, mode %o; want %d, 700", state.Uid, state.Mode, UID)
	}
	spec := files["opt/simple-uml/spec.json"]
	if !strings.Contains(spec.content, `"Kernel": "/opt/simple-uml/linux"`) || !strings.Contains(spec.content, `"COW": "/var/lib/simple-uml/guest.cow"`) || strings.Contains(spec.content, "/host/") {
		t.Errorf("the spec names the host's paths or not the image's:\n%s", spec.content)
	}
}

type imageFile struct {
	Uid     int
	Mode    int64
	Size    int64
	ModTime time.Time
	content string // for the spec
}

// imageFiles lists every layer's entries.
func imageFiles(t *testing.T, img v1.Image) map[string]imageFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]imageFile{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			f := imageFile{Uid: hdr.Uid, Mode: hdr.Mode, Size: hdr.Size, ModTime: hdr.ModTime}
			if strings.HasSuffix(hdr.Name, ".json") {
				data, _ := io.ReadAll(tr)
				f.content = string(data)
			}
			out[hdr.Name] = f
		}
		rc.Close()
	}
	return out
}

// TestHostFolderRefused: an image cannot hold a folder of the host, and nothing is written.
func TestHostFolderRefused(t *testing.T) {
	dir := t.TempDir()
	in := testInput(t, dir, "an image")
	in.Spec.Options.Hostfs = dir
	archive := filepath.Join(dir, "test.oci.tar")
	if _, err := Write(context.Background(), in, archive); err == nil || !strings.Contains(err.Error(), "SUML_BOOT_HOSTFS") {
		t.Errorf("Write with a shared folder: %v", err)
	}
	if _, err := os.Stat(archive); err == nil {
		t.Error("an archive was written")
	}
}

// TestStaticKernelNeedsNoLibraries: a static program brings nothing; a dynamic one its loader and C
// library, found where the loader finds them.
func TestStaticKernelNeedsNoLibraries(t *testing.T) {
	static, err := programLibraries("/bin/busybox")
	if err != nil || len(static) != 0 {
		t.Errorf("busybox-static: %v %v, want nothing", static, err)
	}
	dynamic, err := programLibraries("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range dynamic {
		names = append(names, e.Name)
	}
	got := strings.Join(names, " ")
	if !strings.Contains(got, "lib64/ld-linux-x86-64.so.2") || !strings.Contains(got, "libc.so.6") || !strings.Contains(got, "lib64 ") {
		t.Errorf("/bin/true's libraries: %s", got)
	}
}

// TestNewRootfsIsANewBackingFile: a volume kept across images keeps guest.cow, whose header names
// /opt/simple-uml/image.ext4 with its size and mtime. A recipe's image has a fixed size
// (image_size), so two root filesystems must differ in their time, or UML would apply the old
// copy-on-write sectors over a different ext4 image (found by a reviewer; the entrypoint also refuses
// a COW file made over another image, by digest).
func TestNewRootfsIsANewBackingFile(t *testing.T) {
	one := buildImage(t, testInput(t, t.TempDir(), "root filesystem one"))
	two := buildImage(t, testInput(t, t.TempDir(), "root filesystem two"))
	// What UML checks of a COW file's backing file (ubd_kern.c, backing_file_mismatch): size and mtime.
	first, second := imageFiles(t, one)["opt/simple-uml/image.ext4"], imageFiles(t, two)["opt/simple-uml/image.ext4"]
	size1, mtime1, size2, mtime2 := first.Size, first.ModTime, second.Size, second.ModTime
	if size1 == size2 && mtime1.Unix() == mtime2.Unix() {
		t.Errorf("two different root filesystems are both %d bytes with mtime %s: UML takes a COW file made over one for the other", size1, mtime1.UTC())
	}
}
