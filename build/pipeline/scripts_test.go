package pipeline

import (
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/ktap"
)

// TestScriptResult: how a script's output and exit status become its result.
func TestScriptResult(t *testing.T) {
	tests := []struct {
		name   string
		out    string
		status int
		want   ktap.Status
		tests  int
	}{
		{"plain, exit 0", "all good\n", 0, ktap.Pass, 1},
		{"plain, exit 1", "broken\n", 1, ktap.Fail, 1},
		{"KTAP passing", "KTAP version 1\n1..1\nok 1 a\n", 0, ktap.Pass, 1},
		{"KTAP passing, exit 2", "KTAP version 1\n1..1\nok 1 a\n", 2, ktap.Fail, 1},
		{"KTAP with a failure, exit 0", "KTAP version 1\n1..2\nok 1 a\nnot ok 2 b\n", 0, ktap.Fail, 2},
		{"a version line and no result", "TAP version 13\n1..3\n", 0, ktap.Error, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := scriptResult("check.sh", tt.out, tt.status)
			if r.Status != tt.want || ktap.Summarize(r).Tests != tt.tests {
				t.Errorf("status %s with %d tests, want %s with %d", r.Status, ktap.Summarize(r).Tests, tt.want, tt.tests)
			}
			if tt.status != 0 && r.Diagnostic == "" {
				t.Error("a non-zero exit is not said")
			}
		})
	}
}

// TestPrintSuite: a suite's line, then each failing test by its full name, with its log.
func TestPrintSuite(t *testing.T) {
	tests := []struct{ name, ktap, want string }{
		{"a failing parameter case", "KTAP version 1\n1..1\n    KTAP version 1\n    1..2\n    ok 1 a\n" +
			"        KTAP version 1\n        1..1\n        # expected 3, got 4\n        not ok 1 p1\n    not ok 2 params\nnot ok 1 suite\n",
			"  FAIL suite suite: 1 passed, 1 failed, 0 skipped\n      FAIL suite.params.p1 \n        # expected 3, got 4\n"},
		// As the 6.12 kernel prints kunit_fault on UML (ktap/testdata): skipped, not failed.
		{"a suite skipped whole", "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: kunit_fault\n    # module: \n    1..0\nok 1 kunit_fault # SKIP \n",
			"  skip suite kunit_fault: 0 passed, 0 failed, 0 skipped\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, _ := ktap.Parse(strings.NewReader(tt.ktap), "kunit")
			var out strings.Builder
			printSuite(&out, root.Subtests[0])
			if out.String() != tt.want {
				t.Errorf("got\n%q\nwant\n%q", out.String(), tt.want)
			}
		})
	}
}
