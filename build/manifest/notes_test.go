package manifest

import (
	"strings"
	"testing"
)

func TestNotes(t *testing.T) {
	base := func() Manifest {
		return Manifest{Tag: "v6.12.117-1", Kernel: KernelRecord{Version: "6.12.117", Subarch: "x86_64", Compiler: "gcc 12",
			Fragments: []Digest{{File: "kconfig/10-boot.config", SHA256: "a"}}},
			Rootfs: []RootfsRecord{{Recipe: "void-minimal", Arch: "x86_64", RecipeSHA256: "r", Packages: []PackageRecord{
				{Name: "bash", Version: "5.2_1", Pkgver: "bash-5.2_1"}, {Name: "nvi", Version: "1.8_1", Pkgver: "nvi-1.8_1"}}}}}
	}
	cases := []struct {
		name string
		edit func(m *Manifest)
		want []string
	}{
		{"nothing changed", func(m *Manifest) {}, []string{"No changes in inputs"}},
		{"kernel bump", func(m *Manifest) {
			m.Kernel.Version, m.Kernel.Source = "6.12.120", "https://mirror.example/pub/linux/kernel/v6.x/linux-6.12.120.tar.xz"
		}, []string{"Linux 6.12.117 -> 6.12.120 ([changelog](https://mirror.example/pub/linux/kernel/v6.x/ChangeLog-6.12.120))"}},
		{"kernel bump from a local tarball", func(m *Manifest) { m.Kernel.Version, m.Kernel.Source = "6.12.120", "local:linux-6.12.120.tar.xz" },
			[]string{"- Linux 6.12.117 -> 6.12.120\n"}},
		{"kernel bump with Kconfig changes", func(m *Manifest) {
			m.Kernel.Version, m.Kernel.ConfigBase = "6.12.120", "6.12.117"
			m.Kernel.ConfigChanges = []string{"CONFIG_NEW_THING=y (was n)"}
		}, []string{"1 Kconfig options new or changed since 6.12.117", "`CONFIG_NEW_THING=y (was n)`"}},
		{"fragment changed and added", func(m *Manifest) {
			m.Kernel.Fragments = []Digest{{File: "kconfig/10-boot.config", SHA256: "b"}, {File: "kconfig/30-x.config", SHA256: "c"}}
		}, []string{"config fragment changed: `kconfig/10-boot.config`", "config fragment added: `kconfig/30-x.config`"}},
		{"packages", func(m *Manifest) {
			m.Rootfs[0].Packages = []PackageRecord{{Name: "bash", Version: "5.3_1", Pkgver: "bash-5.3_1"}, {Name: "curl", Version: "8_1", Pkgver: "curl-8_1"}}
		}, []string{"`void-minimal`: bash 5.2_1 -> 5.3_1", "`void-minimal`: added curl-8_1", "`void-minimal`: removed nvi"}},
		{"recipe", func(m *Manifest) {
			m.Rootfs[0].RecipeSHA256 = "s"
			m.Rootfs = append(m.Rootfs, RootfsRecord{Recipe: "void-musl"})
		},
			[]string{"`void-minimal`: recipe changed", "new root filesystem `void-musl`"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prev, now := base(), base()
			now.Tag = "v6.12.117-2"
			c.edit(&now)
			notes := Notes(now, &prev)
			for _, w := range append(c.want, "# simple-uml v6.12.117-2", "## Changes since v6.12.117-1") {
				if !strings.Contains(notes, w) {
					t.Errorf("notes lack %q:\n%s", w, notes)
				}
			}
		})
	}
	// Two dropped root filesystems: the same bytes every time (the notes are a release asset).
	prev := base()
	for _, r := range []string{"void-musl", "alpha", "zeta", "beta"} {
		prev.Rootfs = append(prev.Rootfs, RootfsRecord{Recipe: r})
	}
	first := Notes(base(), &prev)
	for i := 0; i < 20; i++ {
		if again := Notes(base(), &prev); again != first {
			t.Fatalf("the notes differ between runs:\n%s\n---\n%s", first, again)
		}
	}
	if !strings.Contains(first, "`void-musl` dropped\n- root filesystem `alpha` dropped") {
		t.Errorf("dropped root filesystems out of the previous release's order:\n%s", first)
	}
	if first := Notes(base(), nil); !strings.Contains(first, "First release.") {
		t.Errorf("first release:\n%s", first)
	}
}
