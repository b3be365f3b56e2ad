// Package xbps reads Void Linux package repositories and packages: repodata, versions and
// dependency patterns, resolution, signatures and unpacking; and writes them as xbps-create and
// xbps-rindex 0.60.7 do: packages from a folder, index entries, repodata, signatures. It needs no
// xbps tools. What it writes is compared with what the real tools wrote in build/userpkg's tests.
package xbps

import (
	"fmt"
	"path"
	"strings"
)

// SplitPkgver splits "name-version_revision" at the last '-'. ok is false when the text after it is
// not a version: it must hold a digit before a '_' followed by a digit revision.
func SplitPkgver(pkgver string) (name, version string, ok bool) {
	i := strings.LastIndexByte(pkgver, '-')
	if i <= 0 || i == len(pkgver)-1 {
		return "", "", false
	}
	name, version = pkgver[:i], pkgver[i+1:]
	u := strings.LastIndexByte(version, '_')
	if u <= 0 || u == len(version)-1 {
		return "", "", false
	}
	if !strings.ContainsAny(version[:u], "0123456789") {
		return "", "", false
	}
	for _, c := range version[u+1:] {
		if (c < '0' || c > '9') && c != '_' {
			return "", "", false
		}
	}
	return name, version, true
}

// Dewey modifiers as NetBSD's dewey.c (and xbps) weigh them.
var deweyWords = []struct {
	word  string
	value int
}{
	{"alpha", -3}, {"beta", -2}, {"pre", -1}, {"rc", -1}, {"pl", 0}, {".", 0},
}

// deweyParse turns "1.2rc1_3" into components [1 0 2 -1 1] and revision 3.
func deweyParse(v string) (comps []int, revision int) {
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c >= '0' && c <= '9':
			n := 0
			for i < len(v) && v[i] >= '0' && v[i] <= '9' {
				if n < 1<<30 {
					n = n*10 + int(v[i]-'0')
				}
				i++
			}
			comps = append(comps, n)
			continue
		case c == '_':
			// The revision: digits after the last '_'; extra '_' are separators.
			i++
			n := 0
			for i < len(v) && v[i] >= '0' && v[i] <= '9' {
				if n < 1<<30 {
					n = n*10 + int(v[i]-'0')
				}
				i++
			}
			revision = n
			continue
		}
		matched := false
		for _, m := range deweyWords {
			if len(v)-i >= len(m.word) && strings.EqualFold(v[i:i+len(m.word)], m.word) {
				comps = append(comps, m.value)
				i += len(m.word)
				matched = true
				break
			}
		}
		if matched {
			continue
		}
		if l := c | 0x20; l >= 'a' && l <= 'z' {
			comps = append(comps, 0, int(l-'a')+1)
		}
		i++
	}
	return comps, revision
}

// CompareVersions orders two versions ("1.2.3_1") the way xbps_cmpver does: -1, 0 or 1.
func CompareVersions(a, b string) int {
	ca, ra := deweyParse(a)
	cb, rb := deweyParse(b)
	for i := 0; i < len(ca) || i < len(cb); i++ {
		x, y := 0, 0
		if i < len(ca) {
			x = ca[i]
		}
		if i < len(cb) {
			y = cb[i]
		}
		if x != y {
			return sign(x - y)
		}
	}
	return sign(ra - rb)
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// Pattern is a parsed dependency string: "foo>=1.0_1", "foo>=1<2", "foo-1.0_1", "foo-[0-9]*" or "foo".
type Pattern struct {
	Text string
	Name string
	// Constraints hold (operator, version) pairs, all of which must hold.
	Constraints []Constraint
	// Exact is the pkgver an exact dependency names; Glob a shell pattern over the pkgver.
	Exact string
	Glob  string
}

// Constraint is one comparison of a version pattern.
type Constraint struct {
	Op      string // one of < <= > >= == !=
	Version string
}

// ParsePattern reads a dependency or request string.
func ParsePattern(s string) (Pattern, error) {
	p := Pattern{Text: s}
	if s == "" || strings.ContainsAny(s, " \t\n/") {
		return p, fmt.Errorf("bad package pattern %q", s)
	}
	if i := strings.IndexAny(s, "<>=!"); i >= 0 {
		p.Name = s[:i]
		rest := s[i:]
		for rest != "" {
			op := rest[:1]
			if len(rest) > 1 && rest[1] == '=' {
				op = rest[:2]
			}
			switch op {
			case "<", "<=", ">", ">=", "==", "!=":
			default:
				return p, fmt.Errorf("bad package pattern %q: unknown operator %q", s, op)
			}
			rest = rest[len(op):]
			j := strings.IndexAny(rest, "<>=!")
			if j < 0 {
				j = len(rest)
			}
			v := rest[:j]
			if v == "" || !strings.ContainsAny(v, "0123456789") {
				return p, fmt.Errorf("bad package pattern %q: %q needs a version", s, op)
			}
			p.Constraints = append(p.Constraints, Constraint{op, v})
			rest = rest[j:]
		}
	} else if i := strings.IndexAny(s, "*?[]"); i >= 0 {
		if _, err := path.Match(s, ""); err != nil {
			return p, fmt.Errorf("bad package pattern %q: %w", s, err)
		}
		p.Name = strings.TrimSuffix(s[:i], "-")
		p.Glob = s
	} else if name, _, ok := SplitPkgver(s); ok {
		p.Name, p.Exact = name, s
	} else {
		p.Name = s
	}
	if p.Name == "" {
		return p, fmt.Errorf("bad package pattern %q: no package name", s)
	}
	return p, nil
}

// Match reports whether a pkgver ("foo-1.2_1") satisfies the pattern.
func (p Pattern) Match(pkgver string) bool {
	name, version, ok := SplitPkgver(pkgver)
	if !ok {
		return false
	}
	switch {
	case p.Exact != "":
		return pkgver == p.Exact
	case p.Glob != "":
		ok, _ := path.Match(p.Glob, pkgver)
		return ok
	}
	if name != p.Name {
		return false
	}
	for _, c := range p.Constraints {
		cmp := CompareVersions(version, c.Version)
		var hold bool
		switch c.Op {
		case "<":
			hold = cmp < 0
		case "<=":
			hold = cmp <= 0
		case ">":
			hold = cmp > 0
		case ">=":
			hold = cmp >= 0
		case "==":
			hold = cmp == 0
		case "!=":
			hold = cmp != 0
		}
		if !hold {
			return false
		}
	}
	return true
}

func (p Pattern) String() string { return p.Text }
