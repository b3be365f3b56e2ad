package release

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// Asset names of the test release, v6.12.117-1.
const (
	testKernelAsset = "simple-uml-linux-6.12.117-1-um-x86_64.tar.xz"
	testImageAsset  = "simple-uml-rootfs-test-x86_64-6.12.117-1.ext4.zst"
)

// testRelease is a release's assets (manifest.json and SHA256SUMS among them once sealed) and the
// manifest they were sealed from.
type testRelease struct {
	m      manifest.Manifest
	assets map[string][]byte
}

// newTestRelease is a release of format 2 with a kernel tarball and one root filesystem (recipe
// "test"): the bytes stand in for real ones, which only installing reads.
func newTestRelease() *testRelease {
	r := &testRelease{assets: map[string][]byte{
		testKernelAsset: bytes.Repeat([]byte("kernel"), 1000),
		testImageAsset:  bytes.Repeat([]byte("image"), 3000),
		"simple-uml-rootfs-test-x86_64-6.12.117-1.tar.zst": []byte("tarball"),
	}}
	r.m = manifest.Manifest{Format: 2, Tag: "v6.12.117-1", Kernel: manifest.KernelRecord{Version: "6.12.117", Subarch: "x86_64"},
		Rootfs: []manifest.RootfsRecord{{Recipe: "test", Arch: "x86_64"}}, Assets: map[string]string{}}
	for name, data := range r.assets {
		r.m.Assets[name] = digest.Bytes(data)
	}
	return r
}

// seal writes manifest.json and SHA256SUMS, which lists every other asset.
func (r *testRelease) seal(t *testing.T) {
	data, err := json.Marshal(r.m)
	if err != nil {
		t.Fatal(err)
	}
	r.assets[manifest.ManifestName] = data
	sums := artifact.Sums{}
	for name, data := range r.assets {
		if name != artifact.SumsName {
			sums[name] = digest.Bytes(data)
		}
	}
	r.assets[artifact.SumsName] = sums.Bytes()
}

// publish makes a published release of tag with the assets.
func (f *fakeGitHub) publish(tag string, assets map[string][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	rel := &fakeRelease{ID: f.nextID, Tag: tag, Assets: map[string]*fakeAsset{}}
	f.releases[rel.ID] = rel
	for name, data := range assets {
		f.nextID++
		rel.Assets[name] = &fakeAsset{ID: f.nextID, Name: name, State: "uploaded", Data: data}
	}
}

// env is the environment of a run that reads the fake's repository with its token.
func (f *fakeGitHub) env() func(string) string {
	env := map[string]string{"GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": f.srv.URL + "/api/v3", "GITHUB_TOKEN": "secret-token"}
	return func(k string) string { return env[k] }
}

// TestPublished: a published release is read only when its SHA256SUMS and manifest agree; fetch
// gets the kernel and the recipe's image checked against them, and verify checks every asset. A
// tampered, incomplete or padded release, a newer format and an unknown recipe are refused, each
// naming what is wrong.
func TestPublished(t *testing.T) {
	cases := []struct {
		name     string
		tag      string                   // "" = the latest
		manifest func(*manifest.Manifest) // before sealing
		assets   func(map[string][]byte)  // after sealing
		recipe   string                   // "" = test
		open     string                   // in OpenPublished's error; "" for none
		bootable string                   // in DownloadBootable's error
		verify   string                   // in Verify's error
		absent   []string                 // assets whose bytes must not have been downloaded
	}{
		{name: "complete"},
		{name: "complete, by tag", tag: "v6.12.117-1"},
		{name: "no SHA256SUMS", assets: func(a map[string][]byte) { delete(a, artifact.SumsName) }, open: "has no SHA256SUMS"},
		{name: "manifest not the one SHA256SUMS lists", assets: func(a map[string][]byte) { a[manifest.ManifestName] = append(a[manifest.ManifestName], ' ') }, open: "manifest.json has sha256"},
		{name: "manifest and SHA256SUMS disagree", manifest: func(m *manifest.Manifest) { m.Assets[testKernelAsset] = strings.Repeat("0", 64) }, open: "disagree"},
		{name: "tampered image", assets: func(a map[string][]byte) { a[testImageAsset][100] ^= 1 }, bootable: "sha256", verify: "sha256"},
		{name: "stray asset", assets: func(a map[string][]byte) { a["extra.txt"] = []byte("not from mage dist") }, verify: "extra.txt is not listed"},
		{name: "listed asset not attached", assets: func(a map[string][]byte) { delete(a, testKernelAsset) }, bootable: "has no " + testKernelAsset, verify: "is listed in SHA256SUMS but not attached"},
		{name: "newer format", manifest: func(m *manifest.Manifest) { m.Format = 3 }, bootable: "newer than this simple-uml's 2: update simple-uml", absent: []string{testKernelAsset, testImageAsset}},
		{name: "unknown recipe", recipe: "other", bootable: "it has: test (set SUML_BOOT_RECIPE", absent: []string{testKernelAsset, testImageAsset}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFakeGitHub(t)
			r := newTestRelease()
			if c.manifest != nil {
				c.manifest(&r.m)
			}
			r.seal(t)
			want := r.m.Assets
			if c.assets != nil {
				c.assets(r.assets)
			}
			f.publish(r.m.Tag, r.assets)
			var log strings.Builder
			p, err := OpenPublished(ctx, f.env(), c.tag, t.TempDir(), &log)
			if !errorIs(t, "open", err, c.open) {
				return
			}
			if p.Manifest.Tag != r.m.Tag {
				t.Errorf("the latest release read as %s", p.Manifest.Tag)
			}
			recipe := "test"
			if c.recipe != "" {
				recipe = c.recipe
			}
			b, err := p.DownloadBootable(ctx, recipe, 2)
			if errorIs(t, "download bootable", err, c.bootable) {
				checkDownloaded(t, b.KernelTarball, r.assets[testKernelAsset])
				checkDownloaded(t, b.Image, r.assets[testImageAsset])
				if b.Rootfs.Recipe != "test" || b.Manifest != p.Manifest {
					t.Errorf("bootable: %+v", b)
				}
				if !strings.Contains(log.String(), "fetch "+testImageAsset+"\n") {
					t.Errorf("the download of the image was not said:\n%s", log.String())
				}
			}
			for _, name := range c.absent {
				if _, err := os.Stat(p.cache.Path(want[name])); err == nil {
					t.Errorf("%s was downloaded from a release that was refused", name)
				}
			}
			errorIs(t, "verify", p.Verify(ctx), c.verify)
			if len(f.storageAuth) > 0 {
				t.Errorf("the storage host was sent the token: %v", f.storageAuth)
			}
		})
	}
}

// errorIs reports whether err is nil, as want "" asks; otherwise it checks err holds want.
func errorIs(t *testing.T, what string, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return true
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: got %v, want %q", what, err, want)
	}
	return false
}

func checkDownloaded(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes, %v; want the asset's %d", path, len(got), err, len(want))
	}
}
