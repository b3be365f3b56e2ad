package kconf

import (
	"bufio"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Mismatch is a requested option that the final .config does not have.
type Mismatch struct {
	Option    string
	Requested string
	Actual    string
	Fragment  string
	Why       string // the Kconfig's dependency, or that no Kconfig defines the option; may be empty
}

// MismatchError lists every requested option that did not survive.
type MismatchError struct{ Mismatches []Mismatch }

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requested kernel option(s) did not survive olddefconfig:", len(e.Mismatches))
	for _, m := range e.Mismatches {
		fmt.Fprintf(&b, "\n  %s: %s requested %s, the final .config has %s", m.Fragment, m.Option, m.Requested, m.Actual)
		if m.Why != "" {
			b.WriteString(" (" + m.Why + ")")
		}
	}
	b.WriteString("\nfix the fragment: enable what the option depends on, or drop the option")
	return b.String()
}

// Check reports every requested option whose final value differs. tree, when not empty, is the
// kernel source tree whose Kconfig files explain why (unmet dependency, or no such option).
func Check(req Requested, final Config, tree string) error {
	var out []Mismatch
	for _, name := range slices.Sorted(maps.Keys(req.Options)) {
		want, got := req.Options[name], final.Get(name)
		if want == got {
			continue
		}
		out = append(out, Mismatch{Option: name, Requested: want, Actual: got, Fragment: req.From[name]})
	}
	if len(out) == 0 {
		return nil
	}
	if tree != "" {
		if defs, err := ScanKconfig(tree); err == nil {
			for i := range out {
				out[i].Why = defs.Explain(out[i].Option)
			}
		}
	}
	return &MismatchError{Mismatches: out}
}

// Definitions records, for each option a Kconfig file defines, its dependencies.
type Definitions map[string][]string // CONFIG_NAME -> "depends on" expressions

// Explain says why an option may not have taken its value.
func (d Definitions) Explain(option string) string {
	deps, ok := d[option]
	if !ok {
		return "no Kconfig file in this kernel defines it: a typo, or removed in this version"
	}
	if len(deps) == 0 {
		return ""
	}
	return "depends on " + strings.Join(deps, " && ")
}

// ScanKconfig reads every Kconfig* file under tree for `config`/`menuconfig` entries and their
// `depends on` lines. It is a reader of the common subset of the language, for messages only.
func ScanKconfig(tree string) (Definitions, error) {
	defs := Definitions{}
	err := filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "Documentation" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(d.Name(), "Kconfig") {
			return nil
		}
		return scanKconfigFile(p, defs)
	})
	return defs, err
}

func scanKconfigFile(path string, defs Definitions) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	current := ""
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "config", "menuconfig":
			if len(fields) >= 2 {
				current = "CONFIG_" + fields[1]
				if _, ok := defs[current]; !ok {
					defs[current] = nil
				}
			}
		case "depends":
			if current != "" && len(fields) >= 3 && fields[1] == "on" {
				dep := strings.Join(fields[2:], " ")
				if len(fields) > 3 || strings.ContainsAny(dep, "|&!") {
					dep = "(" + dep + ")"
				}
				defs[current] = append(defs[current], dep)
			}
		case "choice", "endchoice", "menu", "endmenu", "if", "endif", "comment", "source", "mainmenu":
			current = ""
		}
	}
	return sc.Err()
}
