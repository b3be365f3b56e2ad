package pipeline

import (
	"context"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/ktap"
)

// TestKunitEndToEnd runs KUnit in the end-to-end kernel (kconfig/30-kunit.config builds KUnit's
// example suite and the list tests in, off at boot): every suite, a filter, a filter matching
// nothing, a filter that is not one; the real KTAP the kernel prints is read, and the reports say the
// same.
func TestKunitEndToEnd(t *testing.T) {
	requireE2E(t)
	kernel := e2eKernel(t)
	dist := filepath.Join(t.TempDir(), "dist")
	copyKernel(t, filepath.Dir(kernel), dist)
	cfg := loadConfig(t, map[string]string{"SUML_DIST": dist, "SUML_CACHE": filepath.Join(t.TempDir(), "cache"), "HOME": t.TempDir()}, nil)
	ctx := context.Background()

	root, err := Kunit(ctx, cfg, "", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	suites := map[string]*ktap.Test{}
	for _, s := range root.Subtests {
		suites[s.Name] = s
	}
	if suites["example"] == nil || suites["list-kunit-test"] == nil {
		t.Fatalf("suites %v, want example and list-kunit-test", keys(suites))
	}
	all := ktap.Summarize(root)
	if all.Failed+all.Errors != 0 || all.Skipped == 0 || all.Passed < 20 {
		t.Errorf("every suite: %+v, want passes, the example's skips and no failure", all)
	}
	data, err := os.ReadFile(filepath.Join(dist, "test-reports", "kunit.junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var junit struct {
		Tests   int `xml:"tests,attr"`
		Skipped int `xml:"skipped,attr"`
	}
	if err := xml.Unmarshal(data, &junit); err != nil || junit.Tests != all.Tests || junit.Skipped != all.Skipped {
		t.Errorf("JUnit report: %+v %v, want %d tests, %d skipped", junit, err, all.Tests, all.Skipped)
	}

	only, err := Kunit(ctx, cfg, "list*", testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(only.Subtests) != 1 || only.Subtests[0].Name != "list-kunit-test" {
		t.Errorf("filter list*: suites %+v", only.Subtests)
	}
	if _, err := Kunit(ctx, cfg, "no-such-suite*", testLog(t)); err == nil || !strings.Contains(err.Error(), `filter "no-such-suite*" selects no test`) ||
		!strings.Contains(err.Error(), "list-kunit-test") {
		t.Errorf("a filter matching nothing, with the suites there are: %v", err)
	}
	if _, err := Kunit(ctx, cfg, "list* init=/bin/sh", testLog(t)); err == nil || !strings.Contains(err.Error(), "kunit filter") {
		t.Errorf("a filter adding kernel parameters: %v", err)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// BenchmarkKunit measures mage kunit on the end-to-end kernel (SUML_E2E=1, and SUML_E2E_KERNEL to
// reuse a built kernel with kconfig/30-kunit.config): the boot, every suite, the halt, the KTAP read
// and the reports.
func BenchmarkKunit(b *testing.B) {
	requireE2E(b)
	kernel := e2eKernel(b)
	dist := filepath.Join(b.TempDir(), "dist")
	copyKernel(b, filepath.Dir(kernel), dist)
	cfg := loadConfig(b, map[string]string{"SUML_DIST": dist, "SUML_CACHE": filepath.Join(b.TempDir(), "cache"), "HOME": b.TempDir()}, nil)
	var tests int
	for i := 0; i < b.N; i++ {
		root, err := Kunit(context.Background(), cfg, "", io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		tests = ktap.Summarize(root).Tests
	}
	b.ReportMetric(float64(tests), "tests")
}
