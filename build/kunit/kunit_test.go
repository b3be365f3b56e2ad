package kunit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/ktap"
)

// recordedConsole is a real console of a 6.12 UML kernel booted with KUnit, from build/ktap's testdata.
func recordedConsole(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "ktap", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestKunitFilterSelectsNothing: a filter that selects no test is an error that says so and lists the
// kernel's suites, read from a second boot that lists them; boots are faked with recorded consoles.
func TestKunitFilterSelectsNothing(t *testing.T) {
	ran := recordedConsole(t, "kunit-6.12.117-um.console")          // every suite run
	none := recordedConsole(t, "kunit-6.12.118-um-nomatch.console") // kunit.filter_glob=nosuch*: "1..0"
	listed := recordedConsole(t, "kunit-6.12.118-um-list.console")  // kunit.action=list
	const suites = "example_init, example, list-kunit-test, hlist, klist"
	run := []string{"kunit.enable=1", "kunit_shutdown=halt"}
	list := []string{"kunit.enable=1", "kunit_shutdown=halt", "kunit.action=list"}
	tests := []struct {
		name, filter string
		consoles     []string // what each boot prints, in turn; "error" fails the boot
		wantBoots    [][]string
		wantErr      string // the whole message; empty: none
	}{
		{"a filter that selects suites", "list*", []string{ran},
			[][]string{append(run, "kunit.filter_glob=list*")}, ""},
		{"a filter that selects nothing", "nosuch*", []string{none, listed},
			[][]string{append(run, "kunit.filter_glob=nosuch*"), list},
			`kunit: filter "nosuch*" selects no test; the kernel's suites: ` + suites + ` (filter suites, or suite.test, with * ? [ ] globs, e.g. -filter='example_init*')`},
		{"a kernel before 6.6 runs its suites when asked for a list", "nosuch*", []string{none, ran},
			[][]string{append(run, "kunit.filter_glob=nosuch*"), list},
			`kunit: filter "nosuch*" selects no test; the kernel's suites: ` + suites + ` (filter suites, or suite.test, with * ? [ ] globs, e.g. -filter='example_init*')`},
		{"a kernel that lists no suite", "nosuch*", []string{none, none},
			[][]string{append(run, "kunit.filter_glob=nosuch*"), list},
			`kunit: filter "nosuch*" selects no test, and the kernel lists no KUnit suite (` + Hint + `)`},
		{"no filter and no suite", "", []string{none},
			[][]string{run},
			"kunit: the kernel ran no KUnit suite (" + Hint + ")"},
		{"the listing boot fails", "nosuch*", []string{none, "error"},
			[][]string{append(run, "kunit.filter_glob=nosuch*"), list},
			`kunit: filter "nosuch*" selects no test, and listing the kernel's suites failed: kunit: did not power off`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var boots [][]string
			boot := func(_ context.Context, args []string) (string, error) {
				boots = append(boots, args)
				if len(boots) > len(tt.consoles) {
					t.Fatalf("boot %d: %q", len(boots), args)
				}
				if c := tt.consoles[len(boots)-1]; c != "error" {
					return c, nil
				}
				return "", errors.New("kunit: did not power off")
			}
			root, err := Run(context.Background(), boot, tt.filter)
			if !slices.EqualFunc(boots, tt.wantBoots, slices.Equal) {
				t.Errorf("boots %q, want %q", boots, tt.wantBoots)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr == "" && len(root.Subtests) != 5:
				t.Errorf("%d suites run, want 5", len(root.Subtests))
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("err = %v\nwant %s", err, tt.wantErr)
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
			PrintSuite(&out, root.Subtests[0])
			if out.String() != tt.want {
				t.Errorf("got\n%q\nwant\n%q", out.String(), tt.want)
			}
		})
	}
}
