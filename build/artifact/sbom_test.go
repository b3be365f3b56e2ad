package artifact

import (
	"bytes"
	"strings"
	"testing"
	"time"

	spdxjson "github.com/spdx/tools-golang/json"
)

func TestSPDXLicense(t *testing.T) {
	cases := []struct{ in, want string }{
		{"GPL-2.0-only WITH Linux-syscall-note", "GPL-2.0-only WITH Linux-syscall-note"},
		{"GPL-2.0-or-later, MIT", "GPL-2.0-or-later AND MIT"},
		{"BSD-3-Clause", "BSD-3-Clause"},
		{"custom:Hyprland", "NOASSERTION"},
		{"Public Domain", "NOASSERTION"},
		{"", "NOASSERTION"},
	}
	for _, c := range cases {
		if got, _ := SPDXLicense(c.in); got != c.want {
			t.Errorf("SPDXLicense(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSBOM(t *testing.T) {
	epoch := time.Unix(1794660961, 0)
	top := []Component{
		{Name: "linux", Version: "6.12.117", License: "GPL-2.0-only WITH Linux-syscall-note", SHA256: strings.Repeat("a", 64),
			Download: "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.12.117.tar.xz"},
		{Name: "rootfs-test", Version: "6.12.117-1", Contains: []Component{
			{Name: "busybox", Version: "1.35.0_1", License: "GPL-2.0-only", SHA256: strings.Repeat("b", 64), Supplier: "http://127.0.0.1:1"},
			{Name: "bb-files", Version: "1.0_1", License: "Public Domain", SHA256: strings.Repeat("c", 64)},
		}},
	}
	var a, b bytes.Buffer
	if err := WriteSBOM(&a, "simple-uml v6.12.117-1", "https://simple-uml.invalid/spdx/v6.12.117-1", epoch, top); err != nil {
		t.Fatal(err)
	}
	WriteSBOM(&b, "simple-uml v6.12.117-1", "https://simple-uml.invalid/spdx/v6.12.117-1", epoch, top)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two SBOMs of the same input differ")
	}
	doc, err := spdxjson.Read(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatalf("the SPDX library cannot read the SBOM back: %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || len(doc.Packages) != 4 || len(doc.Relationships) != 4 || doc.CreationInfo.Created != "2026-11-14T12:56:01Z" {
		t.Fatalf("document: version %s, %d packages, %d relationships, created %s", doc.SPDXVersion, len(doc.Packages), len(doc.Relationships), doc.CreationInfo.Created)
	}
	byName := map[string]int{}
	for i, p := range doc.Packages {
		byName[p.PackageName] = i
	}
	bb := doc.Packages[byName["bb-files"]]
	if bb.PackageLicenseDeclared != "NOASSERTION" || !strings.Contains(bb.PackageLicenseComments, "Public Domain") || bb.PackageChecksums[0].Value != strings.Repeat("c", 64) {
		t.Errorf("bb-files: %+v", bb)
	}
	if k := doc.Packages[byName["linux"]]; k.PackageLicenseDeclared != "GPL-2.0-only WITH Linux-syscall-note" || k.PackageDownloadLocation == "NOASSERTION" {
		t.Errorf("linux: %+v", k)
	}
	dup := append(top, top[0])
	if err := WriteSBOM(&bytes.Buffer{}, "x", "y", epoch, dup); err == nil {
		t.Error("a component listed twice was accepted")
	}
}
