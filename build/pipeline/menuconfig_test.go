package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/host"
)

// standInTree is a kernel.tree whose Makefile answers the targets menuconfig's configuration runs as
// kbuild does, into O=: defconfig writes a base, olddefconfig keeps it, and menuconfig changes two
// options as a person would.
const standInTree = `VERSION = 6
PATCHLEVEL = 12
SUBLEVEL = 0
EXTRAVERSION =
defconfig:
	printf 'CONFIG_UML=y\nCONFIG_HOSTFS=y\n' > $(O)/.config
olddefconfig:
	@true
menuconfig:
	printf '# CONFIG_HOSTFS is not set\nCONFIG_STANDIN_FEATURE=y\n' >> $(O)/.config
`

// TestMenuconfigOnStandInTree: menuconfig configures kernel.tree (not the pinned tarball), and writes
// the options the person changed back: an option a fragment sets, into that fragment; a new one into
// 90-menuconfig.config.
func TestMenuconfigOnStandInTree(t *testing.T) {
	if err := host.Check(host.Kernel, host.Menuconfig); err != nil {
		if os.Getenv(e2eSwitch) == "1" {
			t.Fatal(err)
		}
		t.Skipf("%v; CI runs this test", err)
	}
	tree := t.TempDir()
	os.WriteFile(filepath.Join(tree, "Makefile"), []byte(standInTree), 0o644)
	frags := t.TempDir()
	os.WriteFile(filepath.Join(frags, "10-boot.config"), []byte("CONFIG_HOSTFS=y\n"), 0o644)
	cfg := loadConfig(t, map[string]string{"HOME": t.TempDir(), "SUML_CACHE": t.TempDir(), "SUML_DIST": t.TempDir(),
		"SUML_KERNEL_TREE": tree, "SUML_KCONFIG": frags, "SUML_PATCHES": t.TempDir()}, nil)
	var out bytes.Buffer
	written, err := Menuconfig(context.Background(), cfg, strings.NewReader(""), &out, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(written) != 2 {
		t.Fatalf("written %v\n%s", written, out.String())
	}
	boot, _ := os.ReadFile(filepath.Join(frags, "10-boot.config"))
	added, _ := os.ReadFile(filepath.Join(frags, MenuconfigFragment))
	if !strings.Contains(string(boot), "# CONFIG_HOSTFS is not set") || !strings.Contains(string(added), "CONFIG_STANDIN_FEATURE=y") {
		t.Errorf("10-boot.config:\n%s\n%s:\n%s", boot, MenuconfigFragment, added)
	}
	if strings.Contains(out.String(), "cdn.kernel.org") || !strings.Contains(out.String(), "2 option(s) changed") {
		t.Errorf("output:\n%s", out.String())
	}
}
