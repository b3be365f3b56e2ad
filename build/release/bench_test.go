package release

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/simple-uml/simple-uml/build/artifact"
)

// BenchmarkPublish publishes a release of four assets (64 MiB of data in all, as an image would
// be) to the local fake GitHub and reports upload throughput (b.SetBytes) and API calls per
// release, first publish and rerun on the complete release.
func BenchmarkPublish(b *testing.B) {
	dir := b.TempDir()
	big := make([]byte, 48<<20)
	rand.Read(big)
	os.WriteFile(filepath.Join(dir, "image.ext4.zst"), big, 0o644)
	os.WriteFile(filepath.Join(dir, "kernel.tar.xz"), big[:12<<20], 0o644)
	os.WriteFile(filepath.Join(dir, "rootfs.tar.zst"), big[:4<<20], 0o644)
	sums := artifact.Sums{}
	sums.Hash(dir, "image.ext4.zst", "kernel.tar.xz", "rootfs.tar.zst")
	os.WriteFile(filepath.Join(dir, artifact.SumsName), sums.Bytes(), 0o644)
	assets, _ := DirAssets(dir)
	var total int64
	for _, a := range assets {
		total += a.Size
	}
	b.Run("first", func(b *testing.B) {
		b.SetBytes(total)
		var calls int
		for i := 0; i < b.N; i++ {
			f := newFakeGitHub(b)
			plan, err := f.client(b, nil).Publish(context.Background(), fmt.Sprintf("v%d", i), "t", "b", assets)
			if err != nil {
				b.Fatal(err)
			}
			calls += plan.Calls
			f.srv.Close()
		}
		b.ReportMetric(float64(calls)/float64(b.N), "api-calls/release")
	})
	b.Run("rerun", func(b *testing.B) {
		f := newFakeGitHub(b)
		p := f.client(b, nil)
		if _, err := p.Publish(context.Background(), "v1", "t", "b", assets); err != nil {
			b.Fatal(err)
		}
		var calls int
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			plan, err := p.Publish(context.Background(), "v1", "t", "b", assets)
			if err != nil {
				b.Fatal(err)
			}
			calls += plan.Calls
		}
		b.ReportMetric(float64(calls)/float64(b.N), "api-calls/release")
	})
}
