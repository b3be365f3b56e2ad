// Package kunit runs a kernel's KUnit suites the way kunit.py does, by booting it with KUnit on,
// and reads what they found: the filter a person gives, the boots, the verdict and the report lines.
package kunit

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/simple-uml/simple-uml/build/ktap"
)

// filterPattern is what a suite filter may hold: kunit's glob of suite and test names
// ("list*", "example.example_simple_test"); nothing that could add a kernel parameter.
var filterPattern = regexp.MustCompile(`^[A-Za-z0-9_.*?\[\]-]{1,200}$`)

// ValidFilter says whether filter is a suite filter and nothing else: it goes on the kernel's
// command line.
func ValidFilter(filter string) bool { return filterPattern.MatchString(filter) }

// Boot boots the kernel with KUnit's arguments and returns its console.
type Boot func(ctx context.Context, args []string) (console string, err error)

// Run boots the kernel to run the suites filter selects ("" for every one) and reads what
// they found. No suite run is an error; for a filter, one that lists the kernel's suites, which a
// second boot asks it for (kunit.action=list).
func Run(ctx context.Context, boot Boot, filter string) (*ktap.Test, error) {
	args := []string{"kunit.enable=1", "kunit_shutdown=halt"}
	if filter != "" {
		args = append(args, "kunit.filter_glob="+filter)
	}
	console, err := boot(ctx, args)
	if err != nil {
		return nil, err
	}
	root, err := ktap.Parse(strings.NewReader(console), "kunit")
	if err != nil || len(root.Subtests) > 0 {
		return root, err
	}
	if filter == "" {
		return root, fmt.Errorf("kunit: the kernel ran no KUnit suite (%s)", Hint)
	}
	listing, err := boot(ctx, []string{"kunit.enable=1", "kunit_shutdown=halt", "kunit.action=list"})
	if err != nil {
		return root, fmt.Errorf("kunit: filter %q selects no test, and listing the kernel's suites failed: %w", filter, err)
	}
	return root, filterSelectsNothing(filter, ktap.Suites(listing))
}

// Hint is where a kernel's KUnit and its suites come from, for a kernel that has none.
const Hint = "is CONFIG_KUNIT and a suite in the kernel's fragments? kconfig/30-kunit.config"

// filterSelectsNothing is the error for a filter that selected no test of the kernel's suites.
func filterSelectsNothing(filter string, suites []string) error {
	if len(suites) == 0 {
		return fmt.Errorf("kunit: filter %q selects no test, and the kernel lists no KUnit suite (%s)", filter, Hint)
	}
	return fmt.Errorf("kunit: filter %q selects no test; the kernel's suites: %s (filter suites, or suite.test, with * ? [ ] globs, e.g. -filter='%s*')",
		filter, strings.Join(suites, ", "), suites[0])
}

// PrintSuite prints a line for a suite and, for each failing test in it, its name and log.
func PrintSuite(w io.Writer, suite *ktap.Test) {
	ktap.PrintResult(w, "suite", suite)
	suite.Leaves(func(path string, leaf *ktap.Test) {
		if leaf.Status != ktap.Fail && leaf.Status != ktap.Error {
			return
		}
		name := suite.Name + "."
		if path != "" {
			name += path + "."
		}
		fmt.Fprintf(w, "      FAIL %s%s %s\n", name, leaf.Name, leaf.Diagnostic)
		for _, l := range leaf.Log {
			fmt.Fprintf(w, "        %s\n", l)
		}
	})
}
