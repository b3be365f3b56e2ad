package manifest

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/simple-uml/simple-uml/build/fetch"
)

// Notes is the markdown body of a release: what it holds, and what changed since prev (nil
// for a first release): kernel version, patches and config fragments, and packages per recipe.
func Notes(m Manifest, prev *Manifest) string {
	var b strings.Builder
	k := m.Kernel
	fmt.Fprintf(&b, "# simple-uml %s\n\nUser-Mode Linux %s (%s, %s) with", m.Tag, k.Version, k.Subarch, k.Compiler)
	var roots []string
	for _, r := range m.Rootfs {
		roots = append(roots, fmt.Sprintf(" `%s` (%s, %d packages)", r.Recipe, r.Arch, len(r.Packages)))
	}
	b.WriteString(strings.Join(roots, ",") + ".\n\n")
	b.WriteString("Check a download with `sha256sum -c SHA256SUMS`; `manifest.json` lists every input and output.\n\n")
	if prev == nil {
		b.WriteString("## Changes\n\nFirst release.\n")
		return b.String()
	}
	fmt.Fprintf(&b, "## Changes since %s\n\n", prev.Tag)
	changes := 0
	line := func(format string, a ...any) {
		fmt.Fprintf(&b, "- "+format+"\n", a...)
		changes++
	}
	kernelChanges(&b, prev.Kernel, k, line)
	rootfsChanges(prev.Rootfs, m.Rootfs, line)
	if changes == 0 {
		b.WriteString("No changes in inputs: a rebuild.\n")
	}
	return b.String()
}

// kernelChanges lists what changed in the kernel: version, compiler, Kconfig options, patches and
// config fragments.
func kernelChanges(b *strings.Builder, pk, k KernelRecord, line func(string, ...any)) {
	if pk.Version != k.Version && fetch.IsURL(k.Source) {
		// The changelog sits beside the tarball, on the mirror it came from (kernel.mirror).
		line("Linux %s -> %s ([changelog](%s/ChangeLog-%s))", pk.Version, k.Version, k.Source[:strings.LastIndex(k.Source, "/")], k.Version)
	} else if pk.Version != k.Version {
		line("Linux %s -> %s", pk.Version, k.Version)
	}
	if pk.Compiler != k.Compiler {
		line("compiler: %s -> %s", pk.Compiler, k.Compiler)
	}
	if len(k.ConfigChanges) > 0 && k.ConfigBase == pk.Version {
		line("%d Kconfig options new or changed since %s:", len(k.ConfigChanges), pk.Version)
		for i, c := range k.ConfigChanges {
			if i == 50 {
				fmt.Fprintf(b, "  - ... and %d more (manifest.json lists them all)\n", len(k.ConfigChanges)-50)
				break
			}
			fmt.Fprintf(b, "  - `%s`\n", c)
		}
	}
	diffDigests(pk.Patches, k.Patches, "patch", line)
	diffDigests(pk.Fragments, k.Fragments, "config fragment", line)
}

// rootfsChanges lists root filesystems new, changed (recipe, packages added, upgraded, removed) and
// dropped, in a fixed order: the notes are a release asset and must come out the same bytes on every
// run.
func rootfsChanges(prev, now []RootfsRecord, line func(string, ...any)) {
	prevRoots := map[string]RootfsRecord{}
	for _, r := range prev {
		prevRoots[r.Recipe] = r
	}
	for _, r := range now {
		old, ok := prevRoots[r.Recipe]
		if !ok {
			line("new root filesystem `%s`", r.Recipe)
			continue
		}
		if old.RecipeSHA256 != r.RecipeSHA256 {
			line("`%s`: recipe changed", r.Recipe)
		}
		packageChanges(r.Recipe, old.Packages, r.Packages, line)
	}
	// In the previous release's order (a map walk was not the same on every run).
	for _, old := range prev {
		if !slices.ContainsFunc(now, func(r RootfsRecord) bool { return r.Recipe == old.Recipe }) {
			line("root filesystem `%s` dropped", old.Recipe)
		}
	}
}

// packageChanges lists the packages of one recipe added, upgraded and removed.
func packageChanges(recipe string, old, now []PackageRecord, line func(string, ...any)) {
	was := map[string]string{}
	for _, p := range old {
		was[p.Name] = p.Version
	}
	present := map[string]bool{}
	for _, p := range now {
		present[p.Name] = true
		switch v, ok := was[p.Name]; {
		case !ok:
			line("`%s`: added %s", recipe, p.Pkgver)
		case v != p.Version:
			line("`%s`: %s %s -> %s", recipe, p.Name, v, p.Version)
		}
	}
	var gone []string
	for n := range was {
		if !present[n] {
			gone = append(gone, n)
		}
	}
	sort.Strings(gone)
	for _, n := range gone {
		line("`%s`: removed %s", recipe, n)
	}
}

func diffDigests(old, now []Digest, what string, line func(string, ...any)) {
	was := map[string]string{}
	for _, d := range old {
		was[d.File] = d.SHA256
	}
	seen := map[string]bool{}
	for _, d := range now {
		seen[d.File] = true
		switch s, ok := was[d.File]; {
		case !ok:
			line("%s added: `%s`", what, d.File)
		case s != d.SHA256:
			line("%s changed: `%s`", what, d.File)
		}
	}
	for _, d := range old {
		if !seen[d.File] {
			line("%s removed: `%s`", what, d.File)
		}
	}
}
