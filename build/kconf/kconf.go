// Package kconf handles kernel configuration as small fragments: parsing .config syntax, merging the
// fragments in kconfig/ (two fragments that disagree are an error), checking that every requested
// option survived olddefconfig, and turning a menuconfig session back into a fragment.
//
// Limits: values are compared as the text .config holds (strings keep their quotes); "n" and "is not
// set" and an absent option are the same thing.
package kconf

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Config maps option names (with the CONFIG_ prefix) to values: y, m, n, a number, or a quoted string.
type Config map[string]string

var (
	setLine   = regexp.MustCompile(`^(CONFIG_[A-Za-z0-9_]+)=(.*)$`)
	unsetLine = regexp.MustCompile(`^# (CONFIG_[A-Za-z0-9_]+) is not set$`)
)

// Parse reads .config syntax. Other comments and blank lines are skipped; anything else is an error
// naming the line, so a typo in a fragment is caught instead of silently ignored.
func Parse(r io.Reader) (Config, error) {
	c := Config{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if m := setLine.FindStringSubmatch(line); m != nil {
			if m[2] == "" {
				return nil, fmt.Errorf("line %d: %s has no value", n, m[1])
			}
			c[m[1]] = m[2]
			continue
		}
		if m := unsetLine.FindStringSubmatch(line); m != nil {
			c[m[1]] = "n"
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return nil, fmt.Errorf("line %d: %q is not CONFIG_NAME=value or \"# CONFIG_NAME is not set\"", n, line)
	}
	return c, sc.Err()
}

// ParseFile parses a file and names it in errors.
func ParseFile(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Get returns an option's value, with absent options reading as n.
func (c Config) Get(name string) string {
	if v, ok := c[name]; ok {
		return v
	}
	return "n"
}

// Fragment is one file of requested options.
type Fragment struct {
	File    string
	Options Config
}

// LoadFragments reads dir/*.config in name order. A missing directory holds no fragments.
func LoadFragments(dir string) ([]Fragment, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.config"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Fragment
	for _, f := range files {
		c, err := ParseFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, Fragment{File: f, Options: c})
	}
	return out, nil
}

// Requested is the union of fragments, with where each option came from.
type Requested struct {
	Options Config
	From    map[string]string // option -> fragment file
}

// Merge unions fragments. Two fragments that set one option to different values are an error naming
// both files: the order of files must not decide configuration silently.
func Merge(frags []Fragment) (Requested, error) {
	req := Requested{Options: Config{}, From: map[string]string{}}
	for _, f := range frags {
		for _, name := range slices.Sorted(maps.Keys(f.Options)) {
			v := f.Options[name]
			if prev, ok := req.Options[name]; ok && prev != v {
				return Requested{}, fmt.Errorf("%s sets %s=%s but %s sets %s=%s: keep the option in one fragment",
					req.From[name], name, prev, f.File, name, v)
			}
			if _, ok := req.Options[name]; !ok {
				req.Options[name] = v
				req.From[name] = f.File
			}
		}
	}
	return req, nil
}

// Beneath puts a base fragment's options under the requested ones: where both set an option the
// fragments' value wins (they are applied after the base), and the base's other options are
// requested too, so that olddefconfig dropping one of them is caught as for any fragment.
func (r Requested) Beneath(base Fragment) Requested {
	out := Requested{Options: Config{}, From: map[string]string{}}
	for name, v := range base.Options {
		out.Options[name], out.From[name] = v, base.File
	}
	for name, v := range r.Options {
		out.Options[name], out.From[name] = v, r.From[name]
	}
	return out
}

// Format writes options in .config syntax, sorted by name, after a header comment.
func Format(c Config, header string) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimSpace(header), "\n") {
		if l != "" {
			b.WriteString("# " + l + "\n")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c)) {
		b.WriteString(Line(name, c[name]) + "\n")
	}
	return b.Bytes()
}

// Line renders one option as .config does.
func Line(name, value string) string {
	if value == "n" {
		return "# " + name + " is not set"
	}
	return name + "=" + value
}
