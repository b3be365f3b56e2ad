package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/kernel"
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
			`kunit: filter "nosuch*" selects no test, and the kernel lists no KUnit suite (` + kunitHint + `)`},
		{"no filter and no suite", "", []string{none},
			[][]string{run},
			"kunit: the kernel ran no KUnit suite (" + kunitHint + ")"},
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
			root, err := kunitTests(context.Background(), boot, tt.filter)
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

// standInKernel writes a stand-in for dist/linux that records its arguments in args and prints a
// recorded console, as a real kernel booted with KUnit does before it halts.
func standInKernel(t *testing.T, dist, console string) (args string) {
	t.Helper()
	os.MkdirAll(dist, 0o755)
	args = filepath.Join(t.TempDir(), "args")
	consoleFile := filepath.Join(t.TempDir(), "console")
	os.WriteFile(consoleFile, []byte(console), 0o644)
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" > %s\ncat %s\n", args, consoleFile)
	if err := os.WriteFile(filepath.Join(dist, kernel.LinuxName), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return args
}

// TestKunitTarget runs the kunit target on a stand-in kernel that prints real recorded consoles:
// the filter reaches the kernel's command line, every suite is reported and the JSON and JUnit
// reports are written; a failing test fails the target, naming the report; a filter that could add
// a kernel parameter is refused before any boot.
func TestKunitTarget(t *testing.T) {
	tests := []struct {
		name, console, filter string
		wantErr               string
	}{
		{"all pass", "kunit-6.12.117-um.console", "", ""},
		{"filtered", "kunit-6.12.117-um.console", "list*", ""},
		{"a test fails", "kunit-6.12.117-um-failing.console", "", "tests failed"},
		{"a filter that is not one", "kunit-6.12.117-um.console", "x kunit.enable=0", "use suite and test names"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadConfig(t, map[string]string{"HOME": t.TempDir(), "SUML_DIST": t.TempDir(), "SUML_CACHE": t.TempDir(), "SUML_BOOT_SANDBOX": "off"}, nil)
			args := standInKernel(t, cfg.Paths.Dist, recordedConsole(t, tt.console))
			var out bytes.Buffer
			root, err := Kunit(context.Background(), cfg, tt.filter, &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(tt.wantErr, "use suite") {
					if _, err := os.Stat(args); err == nil {
						t.Error("the kernel was booted with a refused filter")
					}
					return
				}
			} else if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			cmdline, _ := os.ReadFile(args)
			if !strings.Contains(string(cmdline), "kunit.enable=1") || (tt.filter != "") != strings.Contains(string(cmdline), "kunit.filter_glob="+tt.filter) {
				t.Errorf("kernel arguments %q", cmdline)
			}
			if root == nil || len(root.Subtests) == 0 {
				t.Fatalf("no suites reported:\n%s", out.String())
			}
			for _, f := range []string{"kunit.json", "kunit.junit.xml"} {
				if info, err := os.Stat(filepath.Join(cfg.Paths.Dist, "test-reports", f)); err != nil || info.Size() == 0 {
					t.Errorf("report %s: %v", f, err)
				}
			}
		})
	}
}
