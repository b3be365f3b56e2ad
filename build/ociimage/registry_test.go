package ociimage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/simple-uml/simple-uml/build/ociimage/registrytest"
)

// TestPushAndPull: an image pushed to a registry on loopback, twice (the second sends nothing new),
// comes back by its digest as the same archive, byte for byte.
func TestPushAndPull(t *testing.T) {
	addr, _ := registrytest.Start(t)
	dir := t.TempDir()
	in := testInput(t, dir, "an image")
	archive := filepath.Join(dir, "test.oci.tar")
	digest, err := Write(context.Background(), in, archive)
	if err != nil {
		t.Fatal(err)
	}
	ref := addr + "/simple-uml/test:1.0"
	for i := 0; i < 2; i++ {
		pushed, err := Push(context.Background(), LayoutDir(archive), ref, authn.Anonymous)
		if err != nil || pushed != digest {
			t.Fatalf("push %d: %s %v, want %s", i+1, pushed, err, digest)
		}
	}
	pulled := filepath.Join(t.TempDir(), "test.oci.tar")
	if err := Pull(context.Background(), addr+"/simple-uml/test@"+digest.String(), pulled, "test", authn.Anonymous); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(archive)
	got, err := os.ReadFile(pulled)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("the pulled archive differs from the pushed one (%d and %d bytes, %v)", len(got), len(want), err)
	}
}

// TestPullRefuses: a registry whose blob was changed after the push, a tag where a digest is
// needed, and a digest the registry does not have: each refused, and no archive written.
func TestPullRefuses(t *testing.T) {
	addr, storage := registrytest.Start(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "test.oci.tar")
	digest, err := Write(context.Background(), testInput(t, dir, "an image"), archive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Push(context.Background(), LayoutDir(archive), addr+"/simple-uml/test:1.0", authn.Anonymous); err != nil {
		t.Fatal(err)
	}
	tamper := func(t *testing.T) {
		img, err := layoutImage(LayoutDir(archive))
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := img.Layers()
		blob, _ := layers[len(layers)-2].Digest() // the root filesystem image's
		data := filepath.Join(storage, "docker/registry/v2/blobs/sha256", blob.Hex[:2], blob.Hex, "data")
		content, err := os.ReadFile(data)
		if err != nil {
			t.Fatal(err)
		}
		content[len(content)/2] ^= 0xff
		if err := os.WriteFile(data, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	tests := []struct {
		name, ref string
		before    func(t *testing.T)
		want      string
	}{
		{"a tag", addr + "/simple-uml/test:1.0", nil, "by digest"},
		{"an unknown digest", addr + "/simple-uml/test@" + other.String(), nil, "MANIFEST_UNKNOWN"},
		{"a changed blob", addr + "/simple-uml/test@" + digest.String(), tamper, "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before(t)
			}
			pulled := filepath.Join(t.TempDir(), "test.oci.tar")
			err := Pull(context.Background(), tt.ref, pulled, "test", authn.Anonymous)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("pull %s: %v, want an error saying %q", tt.ref, err, tt.want)
			}
			if _, err := os.Stat(pulled); err == nil {
				t.Error("an archive was written")
			}
			if _, err := os.Stat(LayoutDir(pulled)); err == nil {
				t.Error("a layout folder was written")
			}
		})
	}
}
