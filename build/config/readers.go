package config

import (
	"fmt"
	"sort"
	"strings"
)

// TargetTables says which tables of settings each mage target reads (kernel.lock's keys count as the
// kernel table's), for `go tool mage settings -for=<target>`. Every target is listed: one that reads
// none has an empty list. TestTargetTables holds it to the magefile's targets.
var TargetTables = map[string][]string{
	"kernel":     {"kernel", "paths"},
	"menuconfig": {"kernel", "paths"},
	"series":     {"kernel"},
	"rootfs":     {"rootfs", "kernel", "boot", "paths"}, // builds the kernel its configure boot needs
	"pkg":        {"paths"},
	"repo":       {"paths"},
	"boot":       {"boot", "paths"},
	"test":       {"boot", "test", "kernel", "paths"},
	"debug":      {"boot", "paths"},
	"image":      {"boot", "kernel", "paths"},
	"kube":       {"boot", "paths"},
	"push":       {"release", "boot", "kernel", "paths"},
	"pull":       {"paths"},
	"lab":        {"boot", "paths"},
	"labConsole": {"paths"},
	"labTest":    {"boot", "paths"},
	"up":         {"boot", "paths"},
	"ps":         {"paths"},
	"stop":       {"paths"},
	"logs":       {"paths"},
	"console":    {"paths"},
	"reset":      {"boot", "paths"},
	"rm":         {"paths"},
	"kunit":      {"kernel", "boot", "paths"},
	"bisect":     {"kernel", "boot", "test", "paths"},
	"dist":       {"release", "kernel", "paths"},
	"verify":     {"paths"},
	"release":    {"release", "kernel", "paths"},
	"fetch":      {"boot", "paths"},
	"bump":       {"kernel"},
	"bumpPR":     {"kernel"},
	"repro":      {"kernel", "rootfs", "boot", "release", "paths"},
	"doctor":     {},
	"cache":      {"paths"},
	"version":    {"kernel"},
	"settings":   {},
}

// Table is the table a setting belongs to: the part of its key before the dot, and "kernel" for
// kernel.lock's keys (SUML_KERNEL_*).
func (s Setting) Table() string {
	if s.File == LockName {
		return "kernel"
	}
	table, _, _ := strings.Cut(s.Key, ".")
	return table
}

// Value is the setting's value in c as it would be written in the environment.
func (s Setting) Value(c *Config) string {
	switch p := s.field(c).(type) {
	case *string:
		return *p
	case *[]string:
		return strings.Join(*p, ",")
	case *int:
		return fmt.Sprint(*p)
	case *bool:
		return fmt.Sprint(*p)
	}
	return ""
}

// SettingsFor lists the settings a target reads, table by table (every setting for ""), or says
// which targets there are.
func SettingsFor(target string) ([]Setting, error) {
	if target == "" {
		return Settings, nil
	}
	tables, ok := TargetTables[target]
	if !ok {
		names := make([]string, 0, len(TargetTables))
		for name := range TargetTables {
			names = append(names, name)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown target %q; the targets are: %s", target, strings.Join(names, ", "))
	}
	var out []Setting
	for _, t := range tables { // the target's own tables first, as TargetTables lists them
		for _, s := range Settings {
			if s.Table() == t {
				out = append(out, s)
			}
		}
	}
	return out, nil
}
