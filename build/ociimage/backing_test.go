package ociimage

import (
	"archive/tar"
	"io"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// backingIdentity is what UML checks before it uses a copy-on-write file over a backing file
// (arch/um/drivers/ubd_kern.c, backing_file_mismatch): the backing file's size and mtime, in
// seconds. It is read from the image's layers, as a container runtime extracts them.
func backingIdentity(t *testing.T, img v1.Image, name string) (int64, time.Time) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
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
			if hdr.Name == name {
				rc.Close()
				return hdr.Size, hdr.ModTime
			}
		}
		rc.Close()
	}
	t.Fatalf("no %s in the image", name)
	return 0, time.Time{}
}

// TestNewRootfsIsANewBackingFile: a volume kept across images keeps guest.cow, whose header names
// /opt/simple-uml/image.ext4 with its size and mtime. A recipe's image has a fixed size
// (image_size), so two root filesystems must differ in their time, or UML would apply the old
// copy-on-write sectors over a different ext4 image (found by a reviewer; the entrypoint also refuses
// a COW file made over another image, by digest).
func TestNewRootfsIsANewBackingFile(t *testing.T) {
	one := buildImage(t, testInput(t, t.TempDir(), "root filesystem one"))
	two := buildImage(t, testInput(t, t.TempDir(), "root filesystem two"))
	size1, mtime1 := backingIdentity(t, one, "opt/simple-uml/image.ext4")
	size2, mtime2 := backingIdentity(t, two, "opt/simple-uml/image.ext4")
	if size1 == size2 && mtime1.Unix() == mtime2.Unix() {
		t.Errorf("two different root filesystems are both %d bytes with mtime %s: UML takes a COW file made over one for the other", size1, mtime1.UTC())
	}
}
