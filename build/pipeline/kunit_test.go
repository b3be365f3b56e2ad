package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
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
