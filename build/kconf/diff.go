package kconf

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/simple-uml/simple-uml/build/files"
)

// Diff returns the options whose value in after differs from before (n for options that disappeared).
func Diff(before, after Config) Config {
	d := Config{}
	for name, v := range after {
		if before.Get(name) != v {
			d[name] = v
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok && before.Get(name) != "n" {
			d[name] = "n"
		}
	}
	return d
}

// Changes lists the options whose value differs between two resolved .config files, sorted:
// "CONFIG_FOO=y (was n)".
func Changes(before, after string) ([]string, error) {
	old, err := ParseFile(before)
	if err != nil {
		return nil, err
	}
	now, err := ParseFile(after)
	if err != nil {
		return nil, err
	}
	var out []string
	for name, v := range Diff(old, now) {
		out = append(out, fmt.Sprintf("%s=%s (was %s)", name, v, old.Get(name)))
	}
	sort.Strings(out)
	return out, nil
}

// WriteBack records changed options in the fragments: an option a fragment already sets is rewritten in
// that fragment, in place; the rest go to the fragment file local (created if needed). It returns the
// files it changed. Each file is replaced atomically.
func WriteBack(frags []Fragment, changed Config, local string) ([]string, error) {
	owner := map[string]string{}
	for _, f := range frags {
		for name := range f.Options {
			owner[name] = f.File
		}
	}
	perFile := map[string]Config{}
	for name, v := range changed {
		file := owner[name]
		if file == "" {
			file = local
		}
		if perFile[file] == nil {
			perFile[file] = Config{}
		}
		perFile[file][name] = v
	}
	var written []string
	for _, file := range slices.Sorted(maps.Keys(perFile)) {
		if err := rewriteFragment(file, perFile[file]); err != nil {
			return written, err
		}
		written = append(written, file)
	}
	return written, nil
}

// rewriteFragment replaces the lines of options in set and appends the options it did not hold.
func rewriteFragment(file string, set Config) error {
	old, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if len(old) == 0 {
		old = []byte("# Options changed with `go tool mage menuconfig`.\n")
	}
	pending := Config{}
	for k, v := range set {
		pending[k] = v
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(old))
	for sc.Scan() {
		line := sc.Text()
		name := ""
		if m := setLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			name = m[1]
		} else if m := unsetLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			name = m[1]
		}
		if v, ok := pending[name]; ok && name != "" {
			line = Line(name, v)
			delete(pending, name)
		}
		out.WriteString(line + "\n")
	}
	for _, name := range slices.Sorted(maps.Keys(pending)) {
		out.WriteString(Line(name, pending[name]) + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	if err := files.WriteBytes(file, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}
