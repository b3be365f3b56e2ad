package proplib

import (
	"fmt"
	"testing"
)

// BenchmarkUnmarshalIndex reads an index the size of Void's x86_64 repository (15,000 packages,
// about 11 MB of property list), as a build does for each repository it has not cached.
func BenchmarkUnmarshalIndex(b *testing.B) {
	idx := map[string]any{}
	for i := range 15000 {
		idx[fmt.Sprintf("pkg%d", i)] = map[string]any{"pkgver": fmt.Sprintf("pkg%d-1.0_1", i), "short_desc": "It's a package & more <x>",
			"run_depends": []any{"glibc>=2.32_1", "libfoo>=1_1"}, "shlib-requires": []any{"libc.so.6", "libm.so.6"},
			"filename-sha256": "9a94e5e3998033d2fff5db0d4a860728d3fa89d3b29d5f87a7840bc721d82867", "filename-size": uint64(135584),
			"installed_size": uint64(339025), "license": "BSD-3-Clause", "maintainer": "A <a@b>", "homepage": "https://example.org"}
	}
	data, err := Marshal(idx)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}
