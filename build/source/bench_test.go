package source

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkUnpackLinuxSource unpacks Debian's real kernel source tarball (150 MB of xz), the figure
// docs/benchmarks.md compares with `tar xJf`. Set SUML_BENCH_TARBALL to use another tarball.
func BenchmarkUnpackLinuxSource(b *testing.B) {
	archive := os.Getenv("SUML_BENCH_TARBALL")
	if archive == "" {
		archive = "/usr/src/linux-source-6.12.tar.xz"
	}
	fi, err := os.Stat(archive)
	if err != nil {
		b.Skipf("no kernel tarball (apt-get install linux-source-6.12): %v", err)
	}
	for _, d := range []struct {
		name    string
		decoder Decoder
	}{{"go-xz", DecoderGo}, {"host-xz", DecoderHost}} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(fi.Size())
			for b.Loop() {
				dest := filepath.Join(b.TempDir(), "tree")
				if _, err := UnpackWith(context.Background(), archive, dest, d.decoder); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
