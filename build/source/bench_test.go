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
	b.SetBytes(fi.Size())
	for i := 0; b.Loop(); i++ {
		dest := filepath.Join(b.TempDir(), "tree")
		if _, err := Unpack(context.Background(), archive, dest); err != nil {
			b.Fatal(err)
		}
	}
}
