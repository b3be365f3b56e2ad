package artifact

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/github/go-spdx/v2/spdxexp"
)

// Component is one piece of software an SBOM lists.
type Component struct {
	Name, Version string
	License       string // as the package says it (xbps: SPDX ids, maybe comma-separated)
	SHA256        string // of the package file or source tarball
	Download      string // where it came from
	Homepage      string
	Supplier      string // e.g. the repository
	OS            bool   // an operating system (the kernel, a root filesystem) rather than a package
	Contains      []Component
}

// SPDXLicense turns an xbps licence field into an SPDX expression: "GPL-2.0-or-later, MIT" (Void's
// list of licences that all apply) becomes "GPL-2.0-or-later AND MIT". ok is false when SPDX does not
// know it; the caller then keeps the text as a licence name.
func SPDXLicense(field string) (expr string, ok bool) {
	f := strings.TrimSpace(field)
	if f == "" {
		return "", false
	}
	parts := strings.Split(f, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	expr = strings.Join(parts, " AND ")
	if valid, _ := spdxexp.ValidateLicenses([]string{expr}); !valid {
		return "", false
	}
	return expr, true
}

// WriteSBOM writes a CycloneDX 1.6 JSON BOM: the release as the subject, the top-level components
// (the kernel, each root filesystem) and what each contains. Everything in it comes from the
// arguments, so it is reproducible: the serial number is derived from them, the time is the epoch.
func WriteSBOM(w io.Writer, name, version string, created time.Time, top []Component) error {
	bom := cdx.NewBOM()
	h := sha256.New()
	fmt.Fprintf(h, "%s %s %d\n", name, version, created.Unix())
	seen := map[string]bool{}
	var convert func(c Component, parent string) (cdx.Component, error)
	convert = func(c Component, parent string) (cdx.Component, error) {
		ref := parent + c.Name + "@" + c.Version
		if seen[ref] {
			return cdx.Component{}, fmt.Errorf("SBOM: %s %s listed twice", c.Name, c.Version)
		}
		seen[ref] = true
		fmt.Fprintf(h, "%s %s %s\n", ref, c.SHA256, c.License)
		out := cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: c.Name, Version: c.Version}
		if c.OS {
			out.Type = cdx.ComponentTypeOS
		}
		if expr, ok := SPDXLicense(c.License); ok {
			out.Licenses = &cdx.Licenses{{Expression: expr}}
		} else if c.License != "" {
			out.Licenses = &cdx.Licenses{{License: &cdx.License{Name: c.License}}}
		}
		if c.SHA256 != "" {
			out.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: c.SHA256}}
		}
		if c.Supplier != "" {
			out.Supplier = &cdx.OrganizationalEntity{Name: c.Supplier}
		}
		var refs []cdx.ExternalReference
		if c.Download != "" {
			refs = append(refs, cdx.ExternalReference{Type: cdx.ERTypeDistribution, URL: c.Download})
		}
		if c.Homepage != "" {
			refs = append(refs, cdx.ExternalReference{Type: cdx.ERTypeWebsite, URL: c.Homepage})
		}
		if len(refs) > 0 {
			out.ExternalReferences = &refs
		}
		if len(c.Contains) > 0 {
			var children []cdx.Component
			for _, child := range c.Contains {
				cc, err := convert(child, c.Name+"/")
				if err != nil {
					return cdx.Component{}, err
				}
				children = append(children, cc)
			}
			out.Components = &children
		}
		return out, nil
	}
	var comps []cdx.Component
	for _, c := range top {
		cc, err := convert(c, "")
		if err != nil {
			return err
		}
		comps = append(comps, cc)
	}
	sum := h.Sum(nil)
	sum[6] = sum[6]&0x0f | 0x50 // a name-based (v5-shaped) UUID from the content
	sum[8] = sum[8]&0x3f | 0x80
	u := hex.EncodeToString(sum[:16])
	bom.SerialNumber = "urn:uuid:" + u[0:8] + "-" + u[8:12] + "-" + u[12:16] + "-" + u[16:20] + "-" + u[20:32]
	bom.Metadata = &cdx.Metadata{
		Timestamp: created.UTC().Format(time.RFC3339),
		Component: &cdx.Component{BOMRef: "release", Type: cdx.ComponentTypeApplication, Name: name, Version: version},
	}
	bom.Components = &comps
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	return enc.EncodeVersion(bom, cdx.SpecVersion1_6)
}
