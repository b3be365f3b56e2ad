package source

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/ident"
)

// MakefileVersion reads VERSION, PATCHLEVEL, SUBLEVEL and EXTRAVERSION from a kernel's top-level
// Makefile and returns the release they make, e.g. 6.12.117 (SUBLEVEL 0 is left out, as kernel.org
// names its tarballs).
func MakefileVersion(r io.Reader) (string, error) {
	vars := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 0; sc.Scan() && n < 200; n++ { // the variables are in the first lines
		key, val, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		switch key {
		case "VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION":
			if _, seen := vars[key]; !seen {
				vars[key] = strings.TrimSpace(val)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	v, p := vars["VERSION"], vars["PATCHLEVEL"]
	if v == "" || p == "" || !digits(v) || !digits(p) {
		return "", fmt.Errorf("no VERSION and PATCHLEVEL numbers in the Makefile: not a Linux source tree")
	}
	out := v + "." + p
	if s := vars["SUBLEVEL"]; s != "" && s != "0" {
		if !digits(s) {
			return "", fmt.Errorf("SUBLEVEL %q is not a number", s)
		}
		out += "." + s
	}
	out += vars["EXTRAVERSION"]
	// The version names files (dist's assets, the release tag): it must be a plain name.
	if err := ident.Name("kernel version", out); err != nil {
		return "", fmt.Errorf("EXTRAVERSION %q is not a plain suffix: %w", vars["EXTRAVERSION"], err)
	}
	return out, nil
}

// TreeVersion reads the version of an unpacked tree.
func TreeVersion(tree string) (string, error) {
	f, err := os.Open(filepath.Join(tree, "Makefile"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	v, err := MakefileVersion(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	return v, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
