package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/ktap"
	"github.com/simple-uml/simple-uml/build/kunit"
	"github.com/simple-uml/simple-uml/build/uml"
)

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
	if filter != "" && !kunit.ValidFilter(filter) {
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
	root, err := kunit.Run(ctx, boot, filter)
	if err != nil {
		return root, err
	}
	for _, suite := range root.Subtests {
		kunit.PrintSuite(w, suite)
	}
	jsonPath, junitPath, err := ktap.WriteReports(filepath.Join(cfg.Paths.Dist, "test-reports"), "kunit", root)
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
