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
	"github.com/simple-uml/simple-uml/build/ktap"
	"github.com/simple-uml/simple-uml/build/uml"
)

// maxScript bounds a check script: it is typed into the guest's console.
const maxScript = 64 << 10

// runScripts copies each of the user's scripts into the logged-in guest, runs it there as root and
// reads what it prints as KTAP or TAP; a script that prints neither is one test, passed by its exit
// status. A script that exits non-zero fails even when its tests passed.
func runScripts(ctx context.Context, vm *uml.Guest, scripts []string, timeout time.Duration, w io.Writer) ([]*ktap.Test, error) {
	var results []*ktap.Test
	for i, path := range scripts {
		data, err := readScript(path)
		if err != nil {
			return results, err
		}
		inGuest := fmt.Sprintf("/tmp/suml-script-%d", i+1)
		if err := vm.WriteFile(ctx, inGuest, data, timeout); err != nil {
			return results, fmt.Errorf("script %s: %w", path, err)
		}
		out, status, err := vm.Run(ctx, inGuest+" 2>&1", timeout)
		if err != nil {
			return results, fmt.Errorf("script %s: %w", path, err)
		}
		t := scriptResult(filepath.Base(path), out, status)
		results = append(results, t)
		printResult(w, "script", t)
	}
	return results, nil
}

func readScript(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("test script: %w (test.scripts, or -script)", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxScript {
		return nil, fmt.Errorf("test script %s: want a regular file of %d KiB at most", path, maxScript>>10)
	}
	return os.ReadFile(path)
}

// scriptResult reads a script's output and exit status as a test.
func scriptResult(name, out string, status int) *ktap.Test {
	t, _ := ktap.Parse(strings.NewReader(out), name) // a strings.Reader does not fail
	if t.Version == "" {
		// Not KTAP or TAP: the script is one test, and its exit status the result.
		t.Status = ktap.Pass
		if status != 0 {
			t.Status = ktap.Fail
		}
		t.Subtests = []*ktap.Test{{Name: name, Status: t.Status, Log: t.Log}}
		t.Log = nil
	}
	if status != 0 && t.Status == ktap.Pass {
		t.Status = ktap.Fail
	}
	if status != 0 {
		t.Diagnostic = fmt.Sprintf("exit status %d", status)
	}
	return t
}

// printResult prints one line for a script's or a suite's tests.
func printResult(w io.Writer, what string, t *ktap.Test) {
	s := ktap.Summarize(t)
	mark := "FAIL"
	switch t.Status {
	case ktap.Pass:
		mark = "ok  "
	case ktap.Skip:
		mark = "skip" // a suite KUnit skipped whole, e.g. one with no tests on this architecture
	}
	detail := fmt.Sprintf("%d passed, %d failed, %d skipped", s.Passed, s.Failed+s.Errors, s.Skipped)
	if t.Diagnostic != "" {
		detail += "; " + t.Diagnostic
	}
	fmt.Fprintf(w, "  %s %s %s: %s\n", mark, what, t.Name, detail)
}

// testReport is `mage test`'s results as one tree: its own checks, then each script's tests.
func testReport(cfg config.Config, checks []uml.CheckResult, scripts []*ktap.Test) *ktap.Test {
	own := &ktap.Test{Name: "checks", Status: ktap.Pass}
	for _, c := range checks {
		leaf := &ktap.Test{Name: c.Name, Status: ktap.Pass, Diagnostic: c.Detail}
		if !c.OK {
			leaf.Status, own.Status = ktap.Fail, ktap.Fail
		}
		own.Subtests = append(own.Subtests, leaf)
	}
	root := &ktap.Test{Name: "mage test " + cfg.Boot.Recipe, Status: own.Status, Subtests: append([]*ktap.Test{own}, scripts...)}
	for _, s := range scripts {
		if s.Status != ktap.Pass {
			root.Status = ktap.Fail
		}
	}
	return root
}
