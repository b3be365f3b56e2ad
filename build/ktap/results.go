package ktap

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/files"
)

// ScriptResult reads a script's output and exit status as a test.
func ScriptResult(name, out string, status int) *Test {
	t, _ := Parse(strings.NewReader(out), name) // a strings.Reader does not fail
	if t.Version == "" {
		// Not KTAP or TAP: the script is one test, and its exit status the result.
		t.Status = Pass
		if status != 0 {
			t.Status = Fail
		}
		t.Subtests = []*Test{{Name: name, Status: t.Status, Log: t.Log}}
		t.Log = nil
	}
	if status != 0 && t.Status == Pass {
		t.Status = Fail
	}
	if status != 0 {
		t.Diagnostic = fmt.Sprintf("exit status %d", status)
	}
	return t
}

// PrintResult prints one line for a script's or a suite's tests.
func PrintResult(w io.Writer, what string, t *Test) {
	s := Summarize(t)
	mark := "FAIL"
	switch t.Status {
	case Pass:
		mark = "ok  "
	case Skip:
		mark = "skip" // a suite KUnit skipped whole, e.g. one with no tests on this architecture
	}
	detail := fmt.Sprintf("%d passed, %d failed, %d skipped", s.Passed, s.Failed+s.Errors, s.Skipped)
	if t.Diagnostic != "" {
		detail += "; " + t.Diagnostic
	}
	fmt.Fprintf(w, "  %s %s %s: %s\n", mark, what, t.Name, detail)
}

// WriteReports writes a tree as JSON and JUnit XML in dir (made if missing), as name.json and
// name.junit.xml.
func WriteReports(dir, name string, root *Test) (jsonPath, junitPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, name+".json")
	junitPath = filepath.Join(dir, name+".junit.xml")
	if err := files.WriteAtomic(jsonPath, 0o644, func(w io.Writer) error { return WriteJSON(w, root) }); err != nil {
		return "", "", err
	}
	if err := files.WriteAtomic(junitPath, 0o644, func(w io.Writer) error { return WriteJUnit(w, root) }); err != nil {
		return "", "", err
	}
	return jsonPath, junitPath, nil
}
