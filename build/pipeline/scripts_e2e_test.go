package pipeline

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/ktap"
)

// The user's checks as a kernel hacker writes them: one prints KTAP with a nested suite and a skip,
// one passes by its exit status, one prints TAP with a failure and exits non-zero.
var guestScripts = map[string]string{
	"proc.sh": `#!/bin/sh
echo "KTAP version 1"
echo "1..2"
echo "    KTAP version 1"
echo "    # Subtest: proc"
echo "    1..2"
if [ -r /proc/version ]; then echo "    ok 1 version"; else echo "    not ok 1 version"; fi
echo "    ok 2 hugepages # SKIP none in this guest"
echo "ok 1 proc"
if grep -q ' / ext4 ' /proc/mounts; then echo "ok 2 rootfs is ext4"; else echo "not ok 2 rootfs is ext4"; fi
`,
	"root.sh": "#!/bin/sh\ntest \"$(id -u)\" = 0\n",
	"regression.sh": `#!/bin/sh
echo "TAP version 13"
echo "1..2"
echo "ok 1 - still fine"
echo "# the value read: 4"
echo "not ok 2 - sysctl default # want 3"
exit 1
`,
	// Guest root's KTAP: 150,000 subtests that never print a result, and test names and log lines
	// that would retitle the terminal, write the clipboard (OSC 52) and ask the terminal to answer.
	"flood.sh": `#!/bin/sh
echo "KTAP version 1"
echo "1..2"
printf 'not ok 1 \033]0;retitled\007 \033]52;c;cHduZWQ=\007 \033[6n\n'
printf '# \033]0;retitled-by-log\007\n'
yes "    KTAP version 1" | head -n 150000
echo "not ok 2 flood"
printf 'the end \033]0;retitled\007\n'
`,
}

// TestGuestScripts: mage test runs test.scripts in the guest after its own checks, reads their KTAP
// or TAP, fails on a failing one, and writes JSON and JUnit reports that say which test failed.
func TestGuestScripts(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, _, _ := e2ePair(t)
	dir := t.TempDir()
	for name, body := range guestScripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script := func(names ...string) string {
		var paths []string
		for _, n := range names {
			paths = append(paths, filepath.Join(dir, n))
		}
		return strings.Join(paths, ",")
	}
	ctx := context.Background()

	cfg := bootConfig(t, ws, map[string]string{"SUML_TEST_SCRIPTS": script("proc.sh", "root.sh")})
	report, err := GuestTest(ctx, cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Scripts) != 2 || report.Scripts[0].Status != ktap.Pass || report.Scripts[1].Status != ktap.Pass {
		t.Fatalf("scripts: %+v", report.Scripts)
	}
	if s := ktap.Summarize(report.Scripts[0]); s != (ktap.Summary{Tests: 3, Passed: 2, Skipped: 1}) {
		t.Errorf("proc.sh: %+v", s)
	}

	cfg = bootConfig(t, ws, map[string]string{"SUML_TEST_SCRIPTS": script("root.sh", "regression.sh")})
	_, err = GuestTest(ctx, cfg, testLog(t))
	if err == nil || !strings.Contains(err.Error(), "script regression.sh: 1 of 2 tests failed exit status 1") {
		t.Fatalf("a failing script: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(cfg.Paths.Dist, "test-reports", "test.junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			if c.Failure != nil {
				failed = append(failed, s.Name+" / "+c.Name+" / "+c.Failure.Message+" / "+c.Failure.Text)
			}
		}
	}
	if suites.Failures != 1 || len(failed) != 1 || failed[0] != "mage test test.regression.sh / sysctl default / want 3 / # the value read: 4" {
		t.Errorf("JUnit: %d tests, %d failures: %q\n%s", suites.Tests, suites.Failures, failed, data)
	}

	// The flood: read up to the bound, and no control sequence of the guest's in what is printed
	// or written.
	var printed strings.Builder
	cfg = bootConfig(t, ws, map[string]string{"SUML_TEST_SCRIPTS": script("flood.sh")})
	report, err = GuestTest(ctx, cfg, &printed)
	if err == nil || len(report.Scripts) != 1 {
		t.Fatalf("the flood: %v", err)
	}
	if s := ktap.Summarize(report.Scripts[0]); s.Tests > 100_000+2 || s.Errors < 99_000 {
		t.Errorf("the flood read %+v, want 100,000 tests at most, nearly all without a result", s)
	}
	for _, name := range []string{"test.json", "test.junit.xml"} {
		data, err := os.ReadFile(filepath.Join(cfg.Paths.Dist, "test-reports", name))
		if err != nil || len(data) > 64<<20 {
			t.Errorf("%s: %d bytes (%v), want 64 MiB at most", name, len(data), err)
		}
		if bytes.ContainsAny(data, "\x1b\x07") {
			t.Errorf("%s holds the guest's control characters", name)
		}
	}
	// The failure shows the console's last lines, the guest's title change among them, made visible.
	if !strings.Contains(printed.String()+err.Error(), `the end \x1b]0;retitled\x07`) {
		t.Errorf("the failure does not show the guest's last line, made visible:\n%v", err)
	}
	if strings.ContainsAny(printed.String()+err.Error(), "\x1b\x07") {
		t.Errorf("what mage test printed holds the guest's control characters:\n%s", firstLines(printed.String(), 40))
	}
}
