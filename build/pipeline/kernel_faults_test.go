package pipeline

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ulikunitz/xz"
)

// smallTarball is a tiny tree with a kernel Makefile, plus any extra entries, as tar.xz.
func smallTarball(t testing.TB, version string, extra ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	xw, err := xz.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(xw)
	top := "linux-" + version + "/"
	mk := "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 999\nEXTRAVERSION =\n"
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tw.WriteHeader(&tar.Header{Name: top, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
	tw.WriteHeader(&tar.Header{Name: top + "Makefile", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(mk)), ModTime: mtime})
	tw.Write([]byte(mk))
	for _, h := range extra {
		tw.WriteHeader(h)
	}
	tw.Close()
	xw.Close()
	return buf.Bytes()
}

func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	return dir
}

// smallTreePatches gives a test of a small stand-in tree an empty patch series, unless it brings its
// own: the repository's patches are for the real kernel.
func smallTreePatches(t testing.TB, extra map[string]string) map[string]string {
	if extra == nil {
		extra = map[string]string{}
	}
	if _, ok := extra["SUML_PATCHES"]; !ok {
		extra["SUML_PATCHES"] = t.TempDir()
	}
	return extra
}

// TestKernelRefusesBadInput runs the real pipeline against a loopback mirror serving bad input: each
// case must fail with an error that names the problem, before anything is unpacked or put in dist/.
func TestKernelRefusesBadInput(t *testing.T) {
	const version = "6.12.999"
	good := smallTarball(t, version)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0x01
	stranger, err := openpgp.NewEntity("Not kernel.org", "", "x@test.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(m *mirror) map[string]string // publishes; returns extra env
		want  []string
	}{
		{"flipped byte in tarball", func(m *mirror) map[string]string {
			m.publish(t, version, good, m.signer, nil)
			m.put("/pub/linux/kernel/v6.x/linux-"+version+".tar.xz", flipped)
			return nil
		}, []string{"linux-6.12.999.tar.xz", "tampered", "sha256"}},
		{"bad signature", func(m *mirror) map[string]string {
			m.publish(t, version, good, m.signer, nil)
			asc := m.files["/pub/linux/kernel/v6.x/sha256sums.asc"]
			m.put("/pub/linux/kernel/v6.x/sha256sums.asc", bytes.Replace(asc, []byte("abab"), []byte("abac"), 1))
			return nil
		}, []string{"sha256sums.asc", "signature does not verify"}},
		{"signed by an untrusted key", func(m *mirror) map[string]string {
			m.publish(t, version, good, stranger, nil)
			return nil
		}, []string{"signature does not verify against the trusted keys", m0fp}},
		{"not yet in sha256sums.asc", func(m *mirror) map[string]string {
			m.publish(t, version, good, m.signer, map[string]string{"linux-" + version + ".tar.xz": ""})
			return nil
		}, []string{"not listed in sha256sums.asc", "try again later"}},
		{"pinned sha256 differs", func(m *mirror) map[string]string {
			m.publish(t, version, good, m.signer, nil)
			return map[string]string{"SUML_KERNEL_SHA256": strings.Repeat("0", 64)}
		}, []string{"expected 0000", "tampered"}},
		{"trusted key not in the key file", func(m *mirror) map[string]string {
			m.publish(t, version, good, m.signer, nil)
			return map[string]string{"SUML_KERNEL_TRUSTED_KEYS": "B8868C80BA62A1FFFAF5FDA9632D3A06589DA6B1"}
		}, []string{"B8868C80BA62A1FFFAF5FDA9632D3A06589DA6B1", "is not among the configured keys"}},
		{"tar entry with ../", func(m *mirror) map[string]string {
			evil := smallTarball(t, version, &tar.Header{Name: "linux-" + version + "/../../escaped", Typeflag: tar.TypeReg, Mode: 0o644})
			m.publish(t, version, evil, m.signer, nil)
			return nil
		}, []string{"refusing archive entry", "../../escaped"}},
		{"patch that does not apply", func(m *mirror) map[string]string {
			m.publish(t, version, good, m.signer, nil)
			patches := writeTree(t, map[string]string{
				"series":                  "0001-extraversion.patch\n",
				"0001-extraversion.patch": "--- a/Makefile\n+++ b/Makefile\n@@ -2 +2 @@\n-PATCHLEVEL = 13\n+PATCHLEVEL = 14\n",
			})
			return map[string]string{"SUML_PATCHES": patches}
		}, []string{"0001-extraversion.patch does not apply", "Makefile, hunk #1"}},
		{"fragments that disagree", func(m *mirror) map[string]string {
			m.publish(t, version, good, m.signer, nil)
			frags := writeTree(t, map[string]string{"a.config": "CONFIG_HOSTFS=y\n", "b.config": "# CONFIG_HOSTFS is not set\n"})
			return map[string]string{"SUML_KCONFIG": frags}
		}, []string{"a.config sets CONFIG_HOSTFS=y but", "b.config sets CONFIG_HOSTFS=n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMirror(t)
			extra := tt.setup(m)
			cfg := m.testConfig(t, version, smallTreePatches(t, extra))
			_, err := Kernel(context.Background(), cfg, io.Discard)
			if err == nil {
				t.Fatal("bad input accepted")
			}
			for _, w := range tt.want {
				if w == m0fp {
					w = m.fingerprint()
				}
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if _, err := os.Stat(cfg.Paths.Dist); err == nil {
				t.Error("dist/ was created")
			}
			// Nothing that looks like a prepared tree: a verified tarball's unpacked copy may stay (a
			// patch that does not apply is fixed and tried again without unpacking), a working tree not.
			trees, _ := filepath.Glob(filepath.Join(cfg.Paths.Cache, "trees", "*"))
			for _, p := range trees {
				if !strings.Contains(filepath.Base(p), ".pristine") || tt.name != "patch that does not apply" {
					t.Errorf("left in the tree cache: %s", p)
				}
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(cfg.Paths.Cache), "escaped")); err == nil {
				t.Error("an archive entry escaped the tree")
			}
		})
	}
}

// m0fp stands for the current mirror's signing fingerprint in expectations.
const m0fp = "<mirror fingerprint>"

// TestKernelDownloadResumes cuts the tarball's download off half-way: the pipeline resumes it with a
// Range request, verifies it, and goes on to configure (which this small tree cannot do).
func TestKernelDownloadResumes(t *testing.T) {
	const version = "6.12.999"
	m := newMirror(t)
	tarball := smallTarball(t, version, &tar.Header{Name: "linux-" + version + "/padding", Typeflag: tar.TypeReg, Mode: 0o644})
	m.publish(t, version, tarball, m.signer, nil)
	path := "/pub/linux/kernel/v6.x/linux-" + version + ".tar.xz"
	m.cut[path] = true
	cfg := m.testConfig(t, version, smallTreePatches(t, nil))
	_, err := Kernel(context.Background(), cfg, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "make defconfig") {
		t.Fatalf("err = %v, want the download to succeed and configuration to fail on this small tree", err)
	}
	if len(m.ranges) == 0 || m.ranges[len(m.ranges)-1] != "bytes="+strconv.Itoa(len(tarball)/2)+"-" {
		t.Errorf("Range requests %q, want a resume from byte %d", m.ranges, len(tarball)/2)
	}
	trees, _ := os.ReadDir(filepath.Join(cfg.Paths.Cache, "trees"))
	if len(trees) != 4 { // the pristine and working trees and their metadata: unpacked only after the resumed file verified
		t.Errorf("tree cache holds %v", trees)
	}
}

// TestKernelCancelledDownload interrupts the pipeline while the tarball downloads, as Ctrl-C does:
// it returns promptly with the context's error and leaves nothing that looks complete.
func TestKernelCancelledDownload(t *testing.T) {
	const version = "6.12.999"
	m := newMirror(t)
	m.publish(t, version, smallTarball(t, version), m.signer, nil)
	stall := make(chan struct{})
	defer close(stall)
	m.mu.Lock()
	m.stall = stall
	m.mu.Unlock()
	cfg := m.testConfig(t, version, smallTreePatches(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Kernel(ctx, cfg, io.Discard)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Error("cancellation was not prompt")
	}
	cached, _ := os.ReadDir(filepath.Join(cfg.Paths.Cache, "downloads", "sha256"))
	trees, _ := os.ReadDir(filepath.Join(cfg.Paths.Cache, "trees"))
	if len(cached)+len(trees) != 0 {
		t.Errorf("an interrupted run left %v %v", cached, trees)
	}
	if _, err := os.Stat(cfg.Paths.Dist); err == nil {
		t.Error("dist/ was created")
	}
}
