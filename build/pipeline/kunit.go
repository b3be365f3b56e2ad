package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/ktap"
	"github.com/simple-uml/simple-uml/build/uml"
)

// kunitFilter is what a suite filter may hold: kunit's glob of suite and test names
// ("list*", "example.example_simple_test"); nothing that could add a kernel parameter.
var kunitFilter = regexp.MustCompile(`^[A-Za-z0-9_.*?\[\]-]{1,200}$`)

// Kunit boots dist's kernel with KUnit on (its suites run before init, and kunit_shutdown=halt ends
// the kernel after them; no root filesystem is needed), reads the KTAP it prints, prints a line per
// suite, writes dist/test-reports/kunit.json and kunit.junit.xml, and fails unless every test passed
// or was skipped. filter is kunit.filter_glob ("" for every suite). With kernel.kunitconfig, the
// kernel is built with those options first, as kunit.py does.
func Kunit(ctx context.Context, cfg config.Config, filter string, w io.Writer) (*ktap.Test, error) {
	if len(cfg.Kernel.KunitConfig) > 0 {
		// The .kunitconfig options must be built in: the kernel is built with them (or found up to date).
		if _, err := Kernel(ctx, cfg, w); err != nil {
			return nil, err
		}
	}
	linux := filepath.Join(cfg.Paths.Dist, kernel.LinuxName)
	if _, err := os.Stat(linux); err != nil {
		return nil, fmt.Errorf("%s is missing: build it with `go tool mage kernel`: %w", linux, err)
	}
	if filter != "" && !kunitFilter.MatchString(filter) {
		return nil, fmt.Errorf("kunit filter %q: use suite and test names with * ? [ ] globs, e.g. 'list*' or 'example.example_simple_test'", filter)
	}
	start := time.Now()
	boot := func(ctx context.Context, args []string) (string, error) {
		fmt.Fprintf(w, "kunit: booting %s (%s)\n", linux, strings.Join(args, " "))
		o := guestOptions(cfg, linux)
		o.Args, o.Timeout = args, 5*o.Timeout // every suite runs before the kernel exits
		res, err := uml.RunUntilExit(ctx, o)
		if err != nil {
			return "", fmt.Errorf("kunit: %w", err)
		}
		return res.Console, nil
	}
	root, err := kunitTests(ctx, boot, filter)
	if err != nil {
		return root, err
	}
	for _, suite := range root.Subtests {
		printSuite(w, suite)
	}
	jsonPath, junitPath, err := writeReports(cfg, "kunit", root)
	if err != nil {
		return root, err
	}
	sum := ktap.Summarize(root)
	fmt.Fprintf(w, "kunit: %d tests, %d passed, %d failed, %d skipped in %s; reports: %s, %s\n", sum.Tests, sum.Passed,
		sum.Failed+sum.Errors, sum.Skipped, time.Since(start).Round(time.Millisecond), jsonPath, junitPath)
	if root.Status != ktap.Pass {
		return root, fmt.Errorf("kunit: %d of %d tests failed (see above and %s)", sum.Failed+sum.Errors, sum.Tests, junitPath)
	}
	return root, nil
}

// kunitBoot boots the kernel with KUnit's arguments and returns its console.
type kunitBoot func(ctx context.Context, args []string) (console string, err error)

// kunitTests boots the kernel to run the suites filter selects ("" for every one) and reads what
// they found. No suite run is an error; for a filter, one that lists the kernel's suites, which a
// second boot asks it for (kunit.action=list).
func kunitTests(ctx context.Context, boot kunitBoot, filter string) (*ktap.Test, error) {
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
		return root, fmt.Errorf("kunit: the kernel ran no KUnit suite (%s)", kunitHint)
	}
	listing, err := boot(ctx, []string{"kunit.enable=1", "kunit_shutdown=halt", "kunit.action=list"})
	if err != nil {
		return root, fmt.Errorf("kunit: filter %q selects no test, and listing the kernel's suites failed: %w", filter, err)
	}
	return root, filterSelectsNothing(filter, ktap.Suites(listing))
}

// kunitHint is where a kernel's KUnit and its suites come from, for a kernel that has none.
const kunitHint = "is CONFIG_KUNIT and a suite in the kernel's fragments? kconfig/30-kunit.config"

// filterSelectsNothing is the error for a filter that selected no test of the kernel's suites.
func filterSelectsNothing(filter string, suites []string) error {
	if len(suites) == 0 {
		return fmt.Errorf("kunit: filter %q selects no test, and the kernel lists no KUnit suite (%s)", filter, kunitHint)
	}
	return fmt.Errorf("kunit: filter %q selects no test; the kernel's suites: %s (filter suites, or suite.test, with * ? [ ] globs, e.g. -filter='%s*')",
		filter, strings.Join(suites, ", "), suites[0])
}

// printSuite prints a line for a suite and, for each failing test in it, its name and log.
func printSuite(w io.Writer, suite *ktap.Test) {
	printResult(w, "suite", suite)
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

// writeReports writes a tree as JSON and JUnit XML in dist/test-reports/, named name.
func writeReports(cfg config.Config, name string, root *ktap.Test) (jsonPath, junitPath string, err error) {
	dir := filepath.Join(cfg.Paths.Dist, "test-reports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, name+".json")
	junitPath = filepath.Join(dir, name+".junit.xml")
	if err := files.WriteAtomic(jsonPath, 0o644, func(w io.Writer) error { return ktap.WriteJSON(w, root) }); err != nil {
		return "", "", err
	}
	if err := files.WriteAtomic(junitPath, 0o644, func(w io.Writer) error { return ktap.WriteJUnit(w, root) }); err != nil {
		return "", "", err
	}
	return jsonPath, junitPath, nil
}
