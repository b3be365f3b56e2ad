package artifact

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/github/go-spdx/v2/spdxexp"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// Component is one piece of software an SBOM lists.
type Component struct {
	Name, Version string
	License       string // as the package says it (xbps: SPDX ids, maybe comma-separated)
	SHA256        string // of the package file or source tarball
	Download      string // where it came from; empty: NOASSERTION
	Homepage      string
	Supplier      string // e.g. the repository
	Contains      []Component
}

var idUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// SPDXLicense turns an xbps licence field into an SPDX expression: "GPL-2.0-or-later, MIT" (Void's
// list of licences that all apply) becomes "GPL-2.0-or-later AND MIT". What SPDX does not know is
// NOASSERTION, and ok is false so the caller can keep the original text.
func SPDXLicense(field string) (expr string, ok bool) {
	f := strings.TrimSpace(field)
	if f == "" {
		return "NOASSERTION", false
	}
	parts := strings.Split(f, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	expr = strings.Join(parts, " AND ")
	if valid, _ := spdxexp.ValidateLicenses([]string{expr}); !valid {
		return "NOASSERTION", false
	}
	return expr, true
}

// WriteSBOM writes an SPDX 2.3 JSON document describing the top-level components (the kernel, each
// root filesystem) and what each contains. Everything in it comes from the arguments, so it is
// reproducible: the namespace is derived from the name, the creation time is the release's epoch.
func WriteSBOM(w io.Writer, name, namespace string, created time.Time, top []Component) error {
	doc := &spdx.Document{
		SPDXVersion: spdx.Version, DataLicense: spdx.DataLicense, SPDXIdentifier: "DOCUMENT",
		DocumentName: name, DocumentNamespace: namespace,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "simple-uml"}},
			Created:  created.UTC().Format(time.RFC3339),
		},
	}
	seen := map[common.ElementID]bool{}
	var add func(c Component, prefix string) (common.ElementID, error)
	add = func(c Component, prefix string) (common.ElementID, error) {
		id := common.ElementID("Package-" + idUnsafe.ReplaceAllString(prefix+c.Name+"-"+c.Version, "-"))
		if seen[id] {
			return "", fmt.Errorf("SBOM: %s %s listed twice", c.Name, c.Version)
		}
		seen[id] = true
		lic, ok := SPDXLicense(c.License)
		p := &spdx.Package{
			PackageName: c.Name, PackageSPDXIdentifier: id, PackageVersion: c.Version,
			PackageDownloadLocation: orNoAssertion(c.Download), PackageHomePage: c.Homepage,
			PackageLicenseConcluded: "NOASSERTION", PackageLicenseDeclared: lic, PackageCopyrightText: "NOASSERTION",
		}
		if !ok && c.License != "" {
			p.PackageLicenseComments = "licence as the package declares it: " + c.License
		}
		if c.Supplier != "" {
			p.PackageSupplier = &common.Supplier{Supplier: c.Supplier, SupplierType: "Organization"}
		}
		if c.SHA256 != "" {
			p.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: c.SHA256}}
		}
		doc.Packages = append(doc.Packages, p)
		for _, child := range c.Contains {
			cid, err := add(child, c.Name+"-")
			if err != nil {
				return "", err
			}
			doc.Relationships = append(doc.Relationships, &spdx.Relationship{
				RefA: common.MakeDocElementID("", string(id)), RefB: common.MakeDocElementID("", string(cid)), Relationship: "CONTAINS"})
		}
		return id, nil
	}
	for _, c := range top {
		id, err := add(c, "")
		if err != nil {
			return err
		}
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", string(id)), Relationship: "DESCRIBES"})
	}
	return spdxjson.Write(doc, w, spdxjson.Indent("  "))
}

func orNoAssertion(s string) string {
	if s == "" {
		return "NOASSERTION"
	}
	return s
}
