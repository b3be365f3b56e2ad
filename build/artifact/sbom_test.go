package artifact

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestSPDXLicense(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"GPL-2.0-only WITH Linux-syscall-note", "GPL-2.0-only WITH Linux-syscall-note", true},
		{"GPL-2.0-or-later, MIT", "GPL-2.0-or-later AND MIT", true},
		{"BSD-3-Clause", "BSD-3-Clause", true},
		{"custom:Hyprland", "", false},
		{"Public Domain", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		if got, ok := SPDXLicense(c.in); got != c.want || ok != c.ok {
			t.Errorf("SPDXLicense(%q) = %q %v, want %q %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// ValidateSBOM checks a BOM against CycloneDX's JSON schema 1.6, read from the cyclonedx-go module
// (which ships the schemas) in the module cache.
func ValidateSBOM(t testing.TB, data []byte) {
	t.Helper()
	if err := validateSBOM(t, data); err != nil {
		t.Fatalf("the SBOM does not validate against CycloneDX 1.6: %v", err)
	}
}

func validateSBOM(t testing.TB, data []byte) error {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Fatalf("locating the CycloneDX schemas (go mod download): %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	for url, file := range map[string]string{
		"http://cyclonedx.org/schema/bom-1.6.schema.json":  "bom-1.6.schema.json",
		"http://cyclonedx.org/schema/spdx.schema.json":     "spdx.schema.json",
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": "jsf-0.82.schemax.json",
	} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
	}
	sch, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	return sch.Validate(inst)
}

func TestSBOM(t *testing.T) {
	epoch := time.Unix(1794660961, 0)
	top := []Component{
		{Name: "linux", Version: "6.12.117", License: "GPL-2.0-only WITH Linux-syscall-note", SHA256: strings.Repeat("a", 64), OS: true,
			Download: "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.12.117.tar.xz", Homepage: "https://www.kernel.org/"},
		{Name: "rootfs-test", Version: "6.12.117-1", OS: true, Contains: []Component{
			{Name: "busybox", Version: "1.35.0_1", License: "GPL-2.0-only", SHA256: strings.Repeat("b", 64), Supplier: "http://127.0.0.1:1"},
			{Name: "bb-files", Version: "1.0_1", License: "Public Domain", SHA256: strings.Repeat("c", 64)},
		}},
	}
	var a, b bytes.Buffer
	if err := WriteSBOM(&a, "simple-uml", "v6.12.117-1", epoch, top); err != nil {
		t.Fatal(err)
	}
	WriteSBOM(&b, "simple-uml", "v6.12.117-1", epoch, top)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two SBOMs of the same input differ")
	}
	ValidateSBOM(t, a.Bytes())
	bad := bytes.Replace(a.Bytes(), []byte(`"type": "operating-system"`), []byte(`"type": "spaceship"`), 1)
	if validateSBOM(t, bad) == nil {
		t.Error("the schema check accepted a component type CycloneDX does not have")
	}
	var doc struct {
		BOMFormat, SpecVersion, SerialNumber string
		Metadata                             struct{ Timestamp string }
		Components                           []struct {
			Name       string
			Type       string
			Licenses   []map[string]any
			Components []struct {
				Name     string
				Hashes   []map[string]string
				Licenses []map[string]any
			}
		}
	}
	if err := json.Unmarshal(a.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.BOMFormat != "CycloneDX" || doc.SpecVersion != "1.6" || doc.Metadata.Timestamp != "2026-11-14T12:56:01Z" || len(doc.Components) != 2 ||
		!strings.HasPrefix(doc.SerialNumber, "urn:uuid:") {
		t.Fatalf("document: %+v", doc)
	}
	kids := doc.Components[1].Components
	if len(kids) != 2 || kids[1].Hashes[0]["content"] != strings.Repeat("c", 64) || kids[1].Licenses[0]["license"].(map[string]any)["name"] != "Public Domain" ||
		kids[0].Licenses[0]["expression"] != "GPL-2.0-only" || doc.Components[0].Type != "operating-system" {
		t.Errorf("components: %+v", doc.Components)
	}
	dup := append(top, top[0])
	if err := WriteSBOM(&bytes.Buffer{}, "x", "y", epoch, dup); err == nil {
		t.Error("a component listed twice was accepted")
	}
}
