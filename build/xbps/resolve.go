package xbps

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Repo is one repository in the order the recipe lists them.
type Repo struct {
	URL  string
	Data *Repodata
}

// Resolved is a package chosen for installation.
type Resolved struct {
	*Package
	Repo *Repo
	// Automatic is true for packages pulled in as dependencies, false for requested ones.
	Automatic bool
	// NeededBy is the chain that pulled the package in, requested package first.
	NeededBy []string
}

// UnresolvedError lists every pattern no repository satisfies, with the chain that needed it.
type UnresolvedError struct {
	Missing []Missing
	Repos   []string
}

// Missing is one unsatisfiable pattern.
type Missing struct {
	Pattern string
	Chain   []string // pkgvers from the requested package down to the one that needs Pattern
}

func (e *UnresolvedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d package pattern(s) cannot be satisfied by the repositories (%s):", len(e.Missing), strings.Join(e.Repos, ", "))
	for _, m := range e.Missing {
		if len(m.Chain) == 0 {
			fmt.Fprintf(&b, "\n  %s: requested, no package or provides matches", m.Pattern)
		} else {
			fmt.Fprintf(&b, "\n  %s: needed by %s", m.Pattern, strings.Join(m.Chain, " -> "))
		}
	}
	b.WriteString("\nadd a repository that has them, or drop the package that needs them from the recipe")
	return b.String()
}

// Conflict is two packages of the transaction that cannot be installed together: Pkg's conflicts
// list has Pattern, which With matches.
type Conflict struct{ Pkg, With, Pattern string }

// ConflictError lists every conflict of the transaction, in xbps's words.
type ConflictError struct{ Conflicts []Conflict }

func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d conflict(s) in the packages to install; remove one package of each pair from the recipe:", len(e.Conflicts))
	for _, c := range e.Conflicts {
		fmt.Fprintf(&b, "\n  CONFLICT: %s with %s in transaction (matched by %s)", c.Pkg, c.With, c.Pattern)
	}
	return b.String()
}

// Resolve chooses packages for the requested patterns and all their run_depends, like xbps: a
// package already in the transaction satisfies a pattern first, then the repositories in order, a
// real package before a virtual one (provides). The result is in install order: dependencies first.
func Resolve(repos []*Repo, requests []string) ([]*Resolved, error) {
	r := resolver{repos: repos, chosen: map[string]*Resolved{}}
	for _, req := range requests {
		p, err := ParsePattern(req)
		if err != nil {
			return nil, err
		}
		r.add(p, nil, false)
	}
	if len(r.missing) > 0 {
		var urls []string
		for _, rp := range repos {
			urls = append(urls, rp.URL)
		}
		return nil, &UnresolvedError{Missing: r.missing, Repos: urls}
	}
	out := r.dropReplaced()
	if err := checkConflicts(out); err != nil {
		return nil, err
	}
	return out, nil
}

type resolver struct {
	repos   []*Repo
	chosen  map[string]*Resolved // by package name
	queue   []*Resolved          // chosen, in the order they were chosen
	order   []*Resolved          // chosen and with their dependencies resolved: install order
	missing []Missing
}

func (r *resolver) add(p Pattern, chain []string, automatic bool) {
	if q := r.queued(p); q != nil {
		if !automatic {
			q.Automatic = false
		}
		return
	}
	pkg, repo := r.find(p)
	if pkg == nil {
		r.missing = append(r.missing, Missing{Pattern: p.Text, Chain: chain})
		return
	}
	if q, ok := r.chosen[pkg.Name]; ok {
		// Another version of a queued package: xbps keeps the first choice and the pattern fails.
		r.missing = append(r.missing, Missing{Pattern: p.Text, Chain: append(slices.Clone(chain), "(queued: "+q.Pkgver+")")})
		return
	}
	res := &Resolved{Package: pkg, Repo: repo, Automatic: automatic, NeededBy: chain}
	r.chosen[pkg.Name] = res
	r.queue = append(r.queue, res)
	next := append(slices.Clone(chain), pkg.Pkgver)
	for _, dep := range pkg.RunDepends {
		dp, err := ParsePattern(dep)
		if err != nil {
			r.missing = append(r.missing, Missing{Pattern: dep + " (unparsable)", Chain: next})
			continue
		}
		r.add(dp, next, true)
	}
	r.order = append(r.order, res)
}

func (r *resolver) queued(p Pattern) *Resolved {
	if q, ok := r.chosen[p.Name]; ok && p.Match(q.Pkgver) {
		return q
	}
	for _, q := range r.queue {
		if providesMatch(q.Package, p) {
			return q
		}
	}
	return nil
}

func (r *resolver) find(p Pattern) (*Package, *Repo) {
	for _, repo := range r.repos {
		if pkg, ok := repo.Data.Index[p.Name]; ok && p.Match(pkg.Pkgver) {
			return pkg, repo
		}
		if p.Glob != "" {
			for _, n := range Names(repo.Data.Index) {
				if pkg := repo.Data.Index[n]; p.Match(pkg.Pkgver) {
					return pkg, repo
				}
			}
		}
	}
	for _, repo := range r.repos {
		for _, n := range Names(repo.Data.Index) {
			if pkg := repo.Data.Index[n]; providesMatch(pkg, p) {
				return pkg, repo
			}
		}
	}
	return nil, nil
}

// providesMatch reports whether a package's provides list satisfies p ("awk-0_1" for "awk>=0").
func providesMatch(pkg *Package, p Pattern) bool {
	for _, v := range pkg.Provides {
		if p.Exact != "" {
			if v == p.Exact {
				return true
			}
			continue
		}
		if p.Match(v) {
			return true
		}
	}
	return false
}

// dropReplaced removes queued packages that another queued package replaces.
func (r *resolver) dropReplaced() []*Resolved {
	gone := map[string]bool{}
	for _, a := range r.order {
		for _, rep := range a.Replaces {
			rp, err := ParsePattern(rep)
			if err != nil {
				continue
			}
			for _, b := range r.order {
				if b != a && !gone[a.Name] && rp.Match(b.Pkgver) {
					gone[b.Name] = true
				}
			}
		}
	}
	var out []*Resolved
	for _, res := range r.order {
		if !gone[res.Name] {
			out = append(out, res)
		}
	}
	return out
}

// checkConflicts finds, as xbps does, for each pattern of each package's conflicts list the first
// other package of the transaction it matches, and reports them all.
func checkConflicts(pkgs []*Resolved) error {
	var found []Conflict
	for _, a := range pkgs {
		for _, c := range a.Conflicts {
			cp, err := ParsePattern(c)
			if err != nil {
				continue
			}
			for _, b := range pkgs {
				if b.Name != a.Name && (cp.Match(b.Pkgver) || providesMatch(b.Package, cp)) {
					found = append(found, Conflict{Pkg: a.Pkgver, With: b.Pkgver, Pattern: c})
					break
				}
			}
		}
	}
	if len(found) > 0 {
		return &ConflictError{Conflicts: found}
	}
	return nil
}

// MissingShlibs lists shared libraries required by the set that no package in it provides,
// each with the packages that need it, as xbps's transaction check does.
func MissingShlibs(pkgs []*Resolved) map[string][]string {
	have := map[string]bool{}
	for _, p := range pkgs {
		for _, s := range p.ShlibProvides {
			have[s] = true
		}
	}
	missing := map[string][]string{}
	for _, p := range pkgs {
		for _, s := range p.ShlibRequires {
			if !have[s] {
				missing[s] = append(missing[s], p.Pkgver)
			}
		}
	}
	for _, v := range missing {
		sort.Strings(v)
	}
	return missing
}
