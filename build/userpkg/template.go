// Package userpkg makes your own software into xbps packages and repositories, without xbps: a
// template file and a folder into a .xbps as xbps-create 0.60.7 makes it, and a folder of packages
// into an (optionally signed) repository as xbps-rindex makes it. The formats themselves are
// build/xbps's; this package reads templates, folders and keys, and writes files atomically.
//
// Limits: a package's files are root's; no shared library detection (shlib-provides and
// shlib-requires), mutable files, tags or preserve; the index is made anew from the folder's
// packages, with an empty stage, as `rm <arch>-repodata; xbps-rindex -a *.xbps` would make it.
package userpkg

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/ident"
)

// Template is a package template, a TOML file. Keys named as props.plist names them; files and the
// payload folder relative to the template's folder.
type Template struct {
	Path         string              `toml:"-"`            // the file, for messages and relative paths
	Name         string              `toml:"name"`         // package name: letters, digits and . _ + - ~
	Version      string              `toml:"version"`      // upstream version: no '-' or '_', at least one digit
	Revision     int                 `toml:"revision"`     // 1, then one more for each rebuild of the same version
	Arch         string              `toml:"arch"`         // x86_64, x86_64-musl, aarch64, ..., or noarch
	ShortDesc    string              `toml:"short_desc"`   // one line
	LongDesc     string              `toml:"long_desc"`    // optional, any length
	License      string              `toml:"license"`      // SPDX, e.g. MIT
	Homepage     string              `toml:"homepage"`     // URL
	Maintainer   string              `toml:"maintainer"`   // "Name <email>"
	RunDepends   []string            `toml:"run_depends"`  // xbps patterns: "busybox>=1.30_1"
	ConfFiles    []string            `toml:"conf_files"`   // absolute paths of payload files xbps keeps when changed
	Provides     []string            `toml:"provides"`     // virtual packages, as pkgvers: "awk-0_1"
	Replaces     []string            `toml:"replaces"`     // patterns of packages this one replaces
	Conflicts    []string            `toml:"conflicts"`    // patterns of packages it cannot be installed with
	Reverts      []string            `toml:"reverts"`      // versions it supersedes although they are newer: "2.0_1"
	Alternatives map[string][]string `toml:"alternatives"` // group -> ["/usr/bin/vi:/usr/bin/nvi", ...]
	Install      string              `toml:"install"`      // INSTALL script file
	Remove       string              `toml:"remove"`       // REMOVE script file
	InstallMsg   string              `toml:"install_msg"`  // text shown after installing
	RemoveMsg    string              `toml:"remove_msg"`   // text shown after removing
	Payload      string              `toml:"payload"`      // the folder whose contents the package installs at /
	// Date is every file's time in the package; without it, SOURCE_DATE_EPOCH's.
	Date Date `toml:"date"`
}

// Date is a template's date: a TOML datetime with its time zone (2025-01-02T03:04:05Z), or seconds
// since 1970 as SOURCE_DATE_EPOCH gives them. A datetime without a zone is refused: it would mean
// another instant on each machine.
type Date struct{ time.Time }

// UnmarshalTOML takes the decoder's value before it loses the fact that no zone was written.
func (d *Date) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case time.Time:
		// The decoder puts a datetime written without a zone in a zone named "datetime-local" (or
		// "date-local", "time-local"): the machine's.
		if strings.HasSuffix(v.Location().String(), "-local") {
			s := v.Format("2006-01-02T15:04:05")
			return fmt.Errorf("date %s has no time zone, so it would depend on the machine's: write it as %sZ (UTC)", s, s)
		}
		d.Time = v
	case int64:
		d.Time = time.Unix(v, 0).UTC()
	default:
		return fmt.Errorf("date: want a datetime with its zone (2025-01-02T03:04:05Z) or seconds since 1970, not %v", v)
	}
	return nil
}

// TemplateHelp is where the template's keys are documented.
const TemplateHelp = "docs/rootfs.md (Your own packages)"

// LoadTemplate reads and checks a template file.
func LoadTemplate(path string) (*Template, error) {
	t := &Template{Path: path}
	if err := config.DecodeFile(path, t, TemplateHelp); err != nil {
		return nil, fmt.Errorf("template %w", err)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("template %s: %w", path, err)
	}
	return t, nil
}

// ParseTemplate reads a template from its text; path says where it is, for relative paths.
func ParseTemplate(data []byte, path string) (*Template, error) {
	t := &Template{Path: path}
	if err := config.Decode(data, path, t, TemplateHelp); err != nil {
		return nil, fmt.Errorf("template %w", err)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("template %s: %w", path, err)
	}
	return t, nil
}

// Validate checks what xbps's grammar asks of a template's identifiers and that the required keys
// are there. The lists are checked when the package is made (they need the payload).
func (t *Template) Validate() error {
	if t.Name == "" {
		return errors.New(`no name: set name = "hello"`)
	}
	if err := ident.Name("name", t.Name); err != nil {
		return err
	}
	if t.Version == "" {
		return errors.New(`no version: set version = "1.0", the upstream version`)
	}
	if err := ident.Name("version", t.Version); err != nil {
		return err
	}
	if strings.ContainsAny(t.Version, "-_") {
		return fmt.Errorf("version %q holds '-' or '_', which separate name, version and revision in xbps: write %q",
			t.Version, strings.NewReplacer("-", "", "_", ".").Replace(t.Version))
	}
	if !strings.ContainsAny(t.Version, "0123456789") {
		return fmt.Errorf("version %q holds no digit, which xbps requires of a version: e.g. version = \"1.0\"", t.Version)
	}
	if t.Revision < 1 {
		return fmt.Errorf("revision %d: set revision = 1, and count up when you package the same version again", t.Revision)
	}
	if t.Arch == "" {
		return errors.New(`no arch: set arch = "x86_64" (or x86_64-musl, aarch64, ...), or "noarch" for a package without binaries`)
	}
	if err := ident.Name("arch", t.Arch); err != nil {
		return err
	}
	if strings.TrimSpace(t.ShortDesc) == "" {
		return errors.New(`no short_desc: set short_desc = "what it is, in one line"`)
	}
	if strings.ContainsAny(t.ShortDesc, "\n\x00") {
		return errors.New("short_desc: one line, please (long_desc takes more)")
	}
	if t.Payload == "" {
		return errors.New(`no payload: set payload = "folder", whose contents the package installs at /`)
	}
	return nil
}

// Pkgver is "name-version_revision".
func (t *Template) Pkgver() string { return t.Name + "-" + t.Version + "_" + strconv.Itoa(t.Revision) }

// File is a path of the template resolved against its folder.
func (t *Template) File(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(t.Path), p)
}
