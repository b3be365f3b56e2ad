package ktap

import (
	"regexp"
	"strings"
)

// listedTest is a line a kernel prints for kunit.action=list: a test as suite.test. Suite and test
// names are C identifiers and dashes; nothing else in a console looks like that.
var listedTest = regexp.MustCompile(`^([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+$`)

// Suites names the KUnit suites a kernel's console shows, each once, in order: the top-level tests
// of its KTAP when it ran them, as a kernel before 6.6 does when asked for a list; else the suites of
// the tests a boot with kunit.action=list printed after its KTAP header (as kunit.py reads them).
func Suites(console string) []string {
	var suites []string
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] && len(suites) < maxTests {
			seen[name] = true
			suites = append(suites, name)
		}
	}
	if root, err := Parse(strings.NewReader(console), "kunit"); err == nil && len(root.Subtests) > 0 {
		for _, t := range root.Subtests {
			add(t.Name)
		}
		return suites
	}
	listing := false
	for _, line := range strings.Split(console, "\n") {
		line = strings.TrimSpace(line)
		if !listing {
			listing = versionRE.MatchString(line)
		} else if m := listedTest.FindStringSubmatch(line); m != nil {
			add(m[1])
		}
	}
	return suites
}
