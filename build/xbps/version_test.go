package xbps

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"1.0_1", "1.0_1", 0},
		{"1.0_1", "1.0_2", -1},
		{"1.0_10", "1.0_9", 1},
		{"1.10_1", "1.9_1", 1},
		{"1.0_1", "1.0.0_1", 0},
		{"1.0.1_1", "1.0_1", 1},
		{"1.0rc1_1", "1.0_1", -1},
		{"1.0pre1_1", "1.0rc1_1", 0},
		{"1.0alpha_1", "1.0beta_1", -1},
		{"1.0beta2_1", "1.0rc1_1", -1},
		{"1.0a_1", "1.0_1", 1},
		{"1.0a_1", "1.0b_1", -1},
		{"1.0pl1_1", "1.0_1", 1},
		{"2.0.5", "2.0.5_1", -1},
		{"20240101_1", "2.0_1", 1},
		{"0", "0.0.1_1", -1},
	}
	for _, c := range cases {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := CompareVersions(c.b, c.a); got != -c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

func TestSplitPkgver(t *testing.T) {
	cases := []struct{ in, name, version string }{
		{"foo-1.0_1", "foo", "1.0_1"},
		{"sdbus-cpp-2.1.0_1", "sdbus-cpp", "2.1.0_1"},
		{"pc:hyprlang-0.6.4_2", "pc:hyprlang", "0.6.4_2"},
		{"foo", "", ""},
		{"foo-bar", "", ""},
		{"foo-1.0", "", ""},
		{"foo-abc_1", "", ""},
		{"foo-1.0_x", "", ""},
	}
	for _, c := range cases {
		n, v, ok := SplitPkgver(c.in)
		if n != c.name || v != c.version || ok != (c.name != "") {
			t.Errorf("SplitPkgver(%q) = %q %q %v", c.in, n, v, ok)
		}
	}
}

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		pattern, pkgver string
		want            bool
	}{
		{"foo>=1.0_1", "foo-1.0_1", true},
		{"foo>=1.0_1", "foo-0.9_3", false},
		{"foo>=0", "foo-0.0.1_1", true},
		{"foo<2", "foo-1.99_1", true},
		{"foo<2", "foo-2.0_1", false},
		{"foo<=2.0_1", "foo-2.0_1", true},
		{"foo>1.0_1", "foo-1.0_1", false},
		{"foo>=1.0<2.0", "foo-1.5_1", true},
		{"foo>=1.0<2.0", "foo-2.0_1", false},
		{"foo==1.0_1", "foo-1.0_1", true},
		{"foo!=1.0_1", "foo-1.0_1", false},
		{"foo-1.0_1", "foo-1.0_1", true},
		{"foo-1.0_1", "foo-1.0_2", false},
		{"foo-[0-9]*", "foo-3.1_1", true},
		{"foo-[0-9]*", "foobar-3.1_1", false},
		{"foo", "foo-7_1", true},
		{"foo>=1", "foobar-2_1", false},
		{"awk>=0", "awk-0_1", true},
		{"deluge-2.0.5_1", "deluge-2.0.5_1", true},
	}
	for _, c := range cases {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		if got := p.Match(c.pkgver); got != c.want {
			t.Errorf("%q matches %q = %v, want %v", c.pattern, c.pkgver, got, c.want)
		}
	}
	for _, bad := range []string{"", ">=1", "foo>=", "foo=>1", "foo bar", "foo-[", "foo>=abc"} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) accepted", bad)
		}
	}
}

func FuzzCompareVersions(f *testing.F) {
	for _, s := range []string{"1.0_1", "1.0rc1_2", "2.0.5", "1.0a_1", "_", "..", "alphabeta"} {
		f.Add(s, "1.0_1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		x, y := CompareVersions(a, b), CompareVersions(b, a)
		if x != -y || (a == b && x != 0) {
			t.Fatalf("CompareVersions(%q,%q)=%d but reversed %d", a, b, x, y)
		}
	})
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"foo>=1.0_1", "foo>=1<2", "foo-1.0_1", "foo-[0-9]*", "foo", "a!=1", "x<=3>1"} {
		f.Add(s, "foo-1.0_1")
	}
	f.Fuzz(func(t *testing.T, pattern, pkgver string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		if p.Name == "" {
			t.Fatalf("%q parsed with no name", pattern)
		}
		if p.Match(pkgver) {
			if _, _, ok := SplitPkgver(pkgver); !ok {
				t.Fatalf("%q matched non-pkgver %q", pattern, pkgver)
			}
		}
	})
}

func TestResolveFixtures(t *testing.T) {
	enc := &Repo{URL: "encoded14", Data: loadFixture(t, "Encoded14-void-user-repository/x86_64", "x86_64")}
	toast := &Repo{URL: "toasterbirb", Data: loadFixture(t, "Toasterbirb-void-repo", "x86_64")}
	giga := &Repo{URL: "gigahawk", Data: loadFixture(t, "Gigahawk-xbps_libselinux", "x86_64")}
	// External dependencies (glibc, libstdc++...) come from a stand-in "base" repository whose
	// index provides every name the fixture repositories need but do not have.
	base := &Repo{URL: "base", Data: externals(enc, toast, giga)}

	cases := []struct {
		repos    []*Repo
		requests []string
		want     []string // pkgvers in install order (subset, in this relative order)
	}{
		{[]*Repo{enc, base}, []string{"hyprcursor"}, []string{"hyprutils-0.10.2_1", "hyprlang-0.6.4_2", "tomlplusplus-3.4.0_1", "hyprcursor-0.1.13_1"}},
		{[]*Repo{enc, base}, []string{"hypridle"}, []string{"hyprutils-0.10.2_1", "hyprlang-0.6.4_2", "sdbus-cpp-2.1.0_1", "hypridle-0.1.7_3"}},
		{[]*Repo{enc}, []string{"glaze", "hyprland-protocols"}, []string{"glaze-6.0.3_1", "hyprland-protocols-0.7.0_1"}},
		{[]*Repo{toast, base}, []string{"deluge-gtk"}, []string{"deluge-2.0.5_1", "deluge-gtk-2.0.5_1"}},
		{[]*Repo{giga, base}, []string{"libselinux-devel"}, []string{"libsepol-2.9_1", "libselinux-2.9_1", "libselinux-devel-2.9_1"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.requests, ","), func(t *testing.T) {
			got, err := Resolve(c.repos, c.requests)
			if err != nil {
				t.Fatal(err)
			}
			pos := map[string]int{}
			for i, r := range got {
				pos[r.Pkgver] = i
			}
			last := -1
			for _, w := range c.want {
				i, ok := pos[w]
				if !ok {
					t.Fatalf("%s not resolved; got %v", w, pkgvers(got))
				}
				if i < last {
					t.Fatalf("%s out of order in %v", w, pkgvers(got))
				}
				last = i
			}
			for _, r := range got {
				wantAuto := !slices.Contains(c.requests, r.Name)
				if r.Automatic != wantAuto {
					t.Errorf("%s automatic=%v", r.Pkgver, r.Automatic)
				}
			}
		})
	}
}

func TestResolveUnsatisfiable(t *testing.T) {
	giga := &Repo{URL: "gigahawk", Data: loadFixture(t, "Gigahawk-xbps_libselinux", "x86_64")}
	_, err := Resolve([]*Repo{giga}, []string{"libselinux-devel"})
	var ue *UnresolvedError
	if !errors.As(err, &ue) {
		t.Fatalf("want UnresolvedError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"glibc", "pcre-devel>=0", "libselinux-devel-2.9_1 -> libselinux-2.9_1", "gigahawk"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if _, err := Resolve([]*Repo{giga}, []string{"no-such-package"}); err == nil || !strings.Contains(err.Error(), "no-such-package: requested") {
		t.Errorf("unknown request: %v", err)
	}
}

func TestResolveVirtualReplacesConflicts(t *testing.T) {
	pkg := func(pkgver string, deps, provides, replaces, conflicts []string) *Package {
		n, v, _ := SplitPkgver(pkgver)
		return &Package{Pkgver: pkgver, Name: n, Version: v, RunDepends: deps, Provides: provides, Replaces: replaces, Conflicts: conflicts}
	}
	repo := func(url string, pkgs ...*Package) *Repo {
		idx := map[string]*Package{}
		for _, p := range pkgs {
			idx[p.Name] = p
		}
		return &Repo{URL: url, Data: &Repodata{Index: idx}}
	}
	first := repo("first", pkg("gawk-5.3_1", nil, []string{"awk-0_1"}, nil, nil), pkg("tool-1_1", []string{"awk>=0"}, nil, nil, nil))
	second := repo("second", pkg("tool-2_1", nil, nil, nil, nil), pkg("mawk-1_1", nil, []string{"awk-0_1"}, nil, nil))

	got, err := Resolve([]*Repo{first, second}, []string{"tool"})
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(pkgvers(got), " "); s != "gawk-5.3_1 tool-1_1" {
		t.Errorf("repository order and virtual provides: got %s", s)
	}
	got, _ = Resolve([]*Repo{second, first}, []string{"tool>=2"})
	if s := strings.Join(pkgvers(got), " "); s != "tool-2_1" {
		t.Errorf("version pattern: got %s", s)
	}

	rep := repo("r", pkg("new-1_1", nil, nil, []string{"old>=0"}, nil), pkg("old-1_1", nil, nil, nil, nil))
	got, err = Resolve([]*Repo{rep}, []string{"old", "new"})
	if err != nil || strings.Join(pkgvers(got), " ") != "new-1_1" {
		t.Errorf("replaces: %v %v", pkgvers(got), err)
	}
	// Every conflict is reported, in xbps's words, not only the first.
	con := repo("c", pkg("a-1_1", nil, nil, nil, []string{"b>=0", "c<2", "d>=0"}), pkg("b-1_1", nil, nil, nil, nil),
		pkg("c-1_1", nil, nil, nil, []string{"a>=0"}), pkg("d-2_1", nil, nil, nil, nil))
	var ce *ConflictError
	_, err = Resolve([]*Repo{con}, []string{"a", "b", "c", "d"})
	if !errors.As(err, &ce) || len(ce.Conflicts) != 4 {
		t.Fatalf("conflicts: %v", err)
	}
	for _, want := range []string{"4 conflict(s)", "CONFLICT: a-1_1 with b-1_1 in transaction (matched by b>=0)", "CONFLICT: a-1_1 with c-1_1 in transaction (matched by c<2)",
		"CONFLICT: a-1_1 with d-2_1 in transaction (matched by d>=0)", "CONFLICT: c-1_1 with a-1_1 in transaction (matched by a>=0)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("conflicts: %q lacks %q", err, want)
		}
	}
}

// externals builds an index that satisfies every dependency the given repositories leave open.
func externals(repos ...*Repo) *Repodata {
	idx := map[string]*Package{}
	for _, r := range repos {
		for _, p := range r.Data.Index {
			for _, d := range p.RunDepends {
				dp, _ := ParsePattern(d)
				if _, ok := r.Data.Index[dp.Name]; ok {
					continue
				}
				pkgver := dp.Name + "-999_1"
				idx[dp.Name] = &Package{Pkgver: pkgver, Name: dp.Name, Version: "999_1"}
			}
		}
	}
	return &Repodata{Index: idx}
}

func pkgvers(rs []*Resolved) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Pkgver)
	}
	return out
}

// FuzzPlist feeds the plist reader (index entries, props.plist, index-meta.plist) untrusted bytes.
func FuzzPlist(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>foo</key><dict><key>pkgver</key><string>foo-1.0_1</string><key>installed_size</key><integer>0x10</integer><key>run_depends</key><array><string>bar>=1</string></array></dict></dict></plist>`))
	f.Add([]byte("DEADBEEF"))
	f.Add([]byte(`<plist><dict><key>public-key</key><data>AAAA</data></dict></plist>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if idx, err := parseIndex(data); err == nil {
			for name, p := range idx {
				if p.Name != name || p.Pkgver == "" {
					t.Fatalf("entry %q: %+v", name, p)
				}
			}
		}
		if m, err := parseMeta(data); err == nil && m != nil && len(m.PublicKeyPEM) == 0 {
			t.Fatal("meta without a key accepted")
		}
	})
}
