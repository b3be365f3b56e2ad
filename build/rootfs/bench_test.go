package rootfs

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkImage times MakeImage (fakeroot + mke2fs -d) and Tarball (debugfs read-back, tar, no
// compression) on a synthetic tree of 256 MiB: 64 files of 4 MiB and 4096 small ones. Throughput is
// per byte of content (b.SetBytes), so MB/s converts to seconds per GB.
func BenchmarkImage(b *testing.B) {
	for _, tool := range []string{"fakeroot", "mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s missing", tool)
		}
	}
	tree := b.TempDir()
	var total int64
	big := make([]byte, 4<<20)
	for i := 0; i < 64; i++ {
		rand.Read(big)
		os.WriteFile(filepath.Join(tree, fmt.Sprintf("big%02d", i)), big, 0o644)
		total += int64(len(big))
	}
	for i := 0; i < 4096; i++ {
		d := filepath.Join(tree, "small", fmt.Sprintf("%02d", i%64))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, fmt.Sprint(i)), []byte("small file\n"), 0o644)
		total += 11
	}
	opts := ImageOptions{Size: 512 << 20, UUID: "01234567-89ab-4def-8123-456789abcdef", Label: "bench", Epoch: time.Unix(1700000000, 0), Log: io.Discard}
	b.Run("mke2fs", func(b *testing.B) {
		b.SetBytes(total)
		for i := 0; i < b.N; i++ {
			img := filepath.Join(b.TempDir(), "img")
			if err := MakeImage(context.Background(), tree, img, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	img := filepath.Join(b.TempDir(), "img")
	if err := MakeImage(context.Background(), tree, img, opts); err != nil {
		b.Fatal(err)
	}
	b.Run("tarball", func(b *testing.B) {
		b.SetBytes(total)
		for i := 0; i < b.N; i++ {
			if err := Tarball(context.Background(), img, io.Discard, opts.Epoch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
