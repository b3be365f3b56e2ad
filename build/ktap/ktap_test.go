package ktap

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// shape renders a tree compactly: name:status[subtests].
func shape(t *Test) string {
	s := t.Name + ":" + string(t.Status)
	if len(t.Subtests) > 0 {
		var subs []string
		for _, c := range t.Subtests {
			subs = append(subs, shape(c))
		}
		s += "[" + strings.Join(subs, " ") + "]"
	}
	return s
}

// debianSource is Debian's linux-source tarball, which the end-to-end tests build from and CI
// installs.
const debianSource = "/usr/src/linux-source-6.12.tar.xz"

// documentedExamples reads the examples of Documentation/dev-tools/ktap.rst from the kernel's own
// source: the literal blocks that begin with a version line.
func documentedExamples(t *testing.T) []string {
	t.Helper()
	if _, err := os.Stat(debianSource); err != nil {
		if os.Getenv("SUML_E2E") != "" {
			t.Fatalf("%s is missing: apt-get install linux-source-6.12 (.ci/run does)", debianSource)
		}
		t.Skipf("%s is missing (SUML_E2E=1, as CI sets, makes this a failure)", debianSource)
	}
	out, err := exec.Command("tar", "-xJOf", debianSource, "--wildcards", "*/Documentation/dev-tools/ktap.rst").Output()
	if err != nil {
		t.Fatal(err)
	}
	var examples []string
	block := regexp.MustCompile(`::\n\n((?:\t[^\n]*\n|\n)+)`)
	for _, m := range block.FindAllStringSubmatch(string(out), -1) {
		text := strings.ReplaceAll(m[1], "\n\t", "\n")
		text = strings.TrimPrefix(text, "\t")
		if strings.HasPrefix(text, "KTAP version 1") {
			examples = append(examples, text)
		}
	}
	return examples
}

// TestDocumentedExamples parses the three examples of ktap.rst into the hierarchies its text
// describes.
func TestDocumentedExamples(t *testing.T) {
	examples := documentedExamples(t)
	want := []string{
		"doc:fail[example:fail[test_1:pass test_2:fail]]",
		"doc:fail[example_test_1:fail[test_3:fail[test_1:fail test_2:pass] test_4:skip] example_test_2:pass]",
		"doc:fail[main_test:fail[example_test_1:pass[test_1:pass] example_test_2:pass[test_1:skip test_2:pass] example_test_3:fail[test_1:pass test_2:fail test_3:skip]]]",
	}
	if len(examples) != len(want) {
		t.Fatalf("ktap.rst has %d examples that start with a version line, want %d", len(examples), len(want))
	}
	for i, ex := range examples {
		root, err := Parse(strings.NewReader(ex), "doc")
		if err != nil {
			t.Fatal(err)
		}
		if got := shape(root); got != want[i] {
			t.Errorf("example %d:\n%s\ngot  %s\nwant %s", i+1, ex, got, want[i])
		}
	}
	// "test_1, which passes, and outputs the diagnostic message ..." and "test_1 skipped".
	root, _ := Parse(strings.NewReader(examples[2]), "doc")
	main := root.Subtests[0]
	if log := strings.Join(main.Subtests[0].Subtests[0].Log, "|"); log != "# test_1: initializing test_1" {
		t.Errorf("test_1's log: %q", log)
	}
	if d := main.Subtests[1].Subtests[0]; d.Directive != "SKIP" || d.Diagnostic != "test_1 skipped" {
		t.Errorf("skipped test_1: %+v", d)
	}
}

func TestParse(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"flat TAP 13 with a plan", "TAP version 13\n1..3\nok 1 - first\nnot ok 2 second # TIMEOUT 30 seconds\nok 3 third # SKIP no disk\n",
			"r:fail[first:pass second:fail third:skip]"},
		{"boot messages before the version line are kept, unknown lines between", "[    0.1] Linux version 6.12\nsome noise\nKTAP version 1\n1..1\nrandom kernel line\nok 1 one\n",
			"r:pass[one:pass]"},
		{"no version line", "ok 1 looks like a result\n", "r:error"},
		{"a plan the results do not meet", "KTAP version 1\n1..3\nok 1 a\nok 2 b\n", "r:error[a:pass b:pass]"},
		{"subtests with no result line", "KTAP version 1\n1..1\n    KTAP version 1\n    1..1\n    ok 1 inner\n", "r:fail[:error[inner:pass]]"},
		{"kunit's four-space suites", "KTAP version 1\n1..2\n    KTAP version 1\n    # Subtest: ext4_inode\n    1..2\n    ok 1 t1\n    ok 2 t2\nok 1 ext4_inode\n    KTAP version 1\n    # Subtest: list\n    1..1\n    not ok 1 t3\nnot ok 2 list\n",
			"r:fail[ext4_inode:pass[t1:pass t2:pass] list:fail[t3:fail]]"},
		{"XFAIL and TODO keep the line's result", "KTAP version 1\nnot ok 1 a # XFAIL known\nok 2 b # TODO later\n", "r:fail[a:fail b:pass]"},
		{"a diagnostic after #", "KTAP version 1\nok 1 check return code # rcode=0\n", "r:pass[check return code:pass]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := Parse(strings.NewReader(tt.in), "r")
			if err != nil {
				t.Fatal(err)
			}
			if got := shape(root); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	root, _ := Parse(strings.NewReader("KTAP version 1\nok 1 check return code # rcode=0\n"), "r")
	if d := root.Subtests[0].Diagnostic; d != "rcode=0" {
		t.Errorf("diagnostic %q", d)
	}
	root, _ = Parse(strings.NewReader("[    0.1] Linux version 6.12\nKTAP version 1\nok 1 a\n"), "r")
	if len(root.Log) != 1 || !strings.Contains(root.Log[0], "Linux version") || root.Version != "KTAP version 1" {
		t.Errorf("root log %q, version %q", root.Log, root.Version)
	}
	if root, _ = Parse(strings.NewReader("ok 1 no version line\n"), "r"); root.Version != "" {
		t.Errorf("version %q without a version line", root.Version)
	}
}

// FuzzParse: whatever a guest prints, Parse ends without panic, within its bounds, with every test
// given a status.
func FuzzParse(f *testing.F) {
	f.Add("KTAP version 1\n1..1\n  KTAP version 1\n  1..2\n  ok 1 test_1\n  not ok 2 test_2\n# example failed\nnot ok 1 example\n")
	f.Add("TAP version 14\n1..2\nok 1 - a # SKIP x\n# Subtest: b\n    1..1\n    ok 1 c\nok 2 b\n")
	f.Add("KTAP version 1\n" + strings.Repeat("  KTAP version 1\n", 40) + "ok 1 deep\n")
	f.Fuzz(func(t *testing.T, in string) {
		root, err := Parse(strings.NewReader(in), "fuzz")
		if err != nil {
			t.Fatal(err)
		}
		var walk func(*Test, int) int
		walk = func(x *Test, depth int) int {
			if depth > maxDepth+1 {
				t.Fatalf("nested %d deep", depth)
			}
			if x.Status == "" {
				t.Fatalf("test %q has no status", x.Name)
			}
			if len(x.Log) > maxLogLines {
				t.Fatalf("log of %d lines", len(x.Log))
			}
			n := 1
			for _, c := range x.Subtests {
				n += walk(c, depth+1)
			}
			return n
		}
		if n := walk(root, 0); n > maxTests+maxDepth+1 {
			t.Fatalf("%d tests", n)
		}
	})
}

// TestRealKernelConsole parses what UML kernels built by `mage kernel` (6.12.117, kconfig/ with
// 30-kunit.config) printed on their console with kunit.enable=1: boot messages, then the suites. The
// second was built from a tree (kernel.tree) with lib/kunit/.kunitconfig and a commit that makes
// example_simple_test fail; its console also holds a kernel warning with a stack trace between
// results, and a suite with no tests, skipped (kunit_fault, "1..0"). The figures were counted in the
// files by hand (grep): result lines at each depth, less the parameterised test holding 4 cases, plus
// the empty suite; SKIP lines.
func TestRealKernelConsole(t *testing.T) {
	tests := []struct {
		file, status, suites string
		sum                  Summary
	}{
		{"kunit-6.12.117-um.console", "pass", "example_init:pass example:pass list-kunit-test:pass hlist:pass klist:pass",
			Summary{Tests: 78, Passed: 74, Skipped: 4}},
		{"kunit-6.12.117-um-failing.console", "fail", "example_init:pass kunit_executor_test:pass kunit-try-catch-test:pass " +
			"kunit-resource-test:pass kunit-log-test:pass kunit_status:pass kunit_current:pass kunit_device:pass kunit_fault:skip " +
			"kunit_platform_device:pass kunit_platform_driver:pass string-stream-test:pass kunit-assert:pass example:fail " +
			"list-kunit-test:pass hlist:pass klist:pass",
			Summary{Tests: 139, Passed: 132, Failed: 1, Skipped: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			root, err := Parse(f, "kunit")
			if err != nil {
				t.Fatal(err)
			}
			var suites []string
			for _, s := range root.Subtests {
				suites = append(suites, s.Name+":"+string(s.Status))
			}
			if got := strings.Join(suites, " "); got != tt.suites {
				t.Errorf("suites %s, want %s", got, tt.suites)
			}
			if sum := Summarize(root); sum != tt.sum || string(root.Status) != tt.status {
				t.Errorf("summary %+v, status %s; want %+v, %s", sum, root.Status, tt.sum, tt.status)
			}
		})
	}
}

// TestHostileOutput: what a guest prints to attack the terminal or the memory of whoever reads its
// results comes out visible and bounded.
func TestHostileOutput(t *testing.T) {
	in := "KTAP version 1\n1..1\n# \x1b]52;c;cm0gLXJmIH4K\x07 clipboard\nnot ok 1 \x1b]0;title\x07name # \x1b[6n query\n"
	root, err := Parse(strings.NewReader(in), "r")
	if err != nil {
		t.Fatal(err)
	}
	got := root.Subtests[0]
	for what, s := range map[string]string{"name": got.Name, "diagnostic": got.Diagnostic, "log": strings.Join(got.Log, "\n")} {
		if strings.ContainsRune(s, 0x1b) || strings.ContainsRune(s, 0x07) || !strings.Contains(s, `\x1b`) {
			t.Errorf("%s %q: the escape sequence is not made visible", what, s)
		}
	}
	// Version lines with no result line each make a test: they count against the bound too.
	flood := "KTAP version 1\n" + strings.Repeat("  KTAP version 1\n", maxTests+1000)
	if root, _ = Parse(strings.NewReader(flood), "r"); len(root.Subtests) > maxTests {
		t.Errorf("%d tests from subtests with no result line, bound %d", len(root.Subtests), maxTests)
	}
}
