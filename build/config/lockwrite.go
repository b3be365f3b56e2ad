package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/simple-uml/simple-uml/build/files"
)

// lockSection is the series whose table in kernel.lock holds cfg's pin: "" for the default series,
// pinned at the top of the file.
func (cfg Config) LockSection() string {
	if cfg.Kernel.Series == cfg.DefaultSeries || cfg.DefaultSeries == "" {
		return ""
	}
	return cfg.Kernel.Series
}

var (
	lockKey   = regexp.MustCompile(`^(\s*)(version|sha256|released)(\s*=\s*)"[^"]*"(.*)$`)
	lockTable = regexp.MustCompile(`^\s*\[([^\[\]]*)\]\s*(#.*)?$`)
)

// RewriteLock replaces the values of version, sha256 and released of a series' pin and keeps every
// other byte: the top of the file for the default series (series ""), its [series."<series>"] table
// for another, which is added at the end when the lock has none yet. The result is read back, so
// that a lock laid out otherwise is refused rather than written wrong.
func RewriteLock(data []byte, series string, lock KernelPin) ([]byte, error) {
	values := map[string]string{"version": lock.Version, "sha256": lock.SHA256, "released": lock.Released}
	want := ""
	if series != "" {
		want = `series."` + series + `"`
	}
	seen := map[string]bool{}
	table := ""
	lines := strings.SplitAfter(string(data), "\n")
	for i, line := range lines {
		body := strings.TrimRight(line, "\n")
		if m := lockTable.FindStringSubmatch(body); m != nil {
			table = strings.Join(strings.Fields(m[1]), "")
			continue
		}
		m := lockKey.FindStringSubmatch(body)
		if m == nil || table != want {
			continue
		}
		seen[m[2]] = true
		lines[i] = m[1] + m[2] + m[3] + `"` + values[m[2]] + `"` + m[4] + line[len(body):]
	}
	out := strings.Join(lines, "")
	if series != "" && len(seen) == 0 {
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += fmt.Sprintf("\n[%s]\nversion = %q\nsha256 = %q\nreleased = %q\n", want, lock.Version, lock.SHA256, lock.Released)
		seen = map[string]bool{"version": true, "sha256": true, "released": true}
	}
	var missing []string
	for _, k := range []string{"version", "sha256", "released"} {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no %s line to rewrite (keys: version, sha256, released)", strings.Join(missing, ", "))
	}
	top, others, err := DecodeLock([]byte(out))
	got := top
	if series != "" {
		got = others[series]
	}
	if err != nil || got != lock {
		what := "the default series' pin"
		if series != "" {
			what = "the [" + want + "] table"
		}
		return nil, fmt.Errorf("could not rewrite %s in place (read back: %v): edit it by hand", what, err)
	}
	return []byte(out), nil
}

// WriteLock rewrites series' pin in the lock file at path in place (RewriteLock), atomically.
func WriteLock(path, series string, pin KernelPin) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated, err := RewriteLock(old, series, pin)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return files.WriteBytes(path, updated, 0o644)
}
