package ktap

import "testing"

// TestScriptResult: how a script's output and exit status become its result.
func TestScriptResult(t *testing.T) {
	tests := []struct {
		name   string
		out    string
		status int
		want   Status
		tests  int
	}{
		{"plain, exit 0", "all good\n", 0, Pass, 1},
		{"plain, exit 1", "broken\n", 1, Fail, 1},
		{"KTAP passing", "KTAP version 1\n1..1\nok 1 a\n", 0, Pass, 1},
		{"KTAP passing, exit 2", "KTAP version 1\n1..1\nok 1 a\n", 2, Fail, 1},
		{"KTAP with a failure, exit 0", "KTAP version 1\n1..2\nok 1 a\nnot ok 2 b\n", 0, Fail, 2},
		{"a version line and no result", "TAP version 13\n1..3\n", 0, Error, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ScriptResult("check.sh", tt.out, tt.status)
			if r.Status != tt.want || Summarize(r).Tests != tt.tests {
				t.Errorf("status %s with %d tests, want %s with %d", r.Status, Summarize(r).Tests, tt.want, tt.tests)
			}
			if tt.status != 0 && r.Diagnostic == "" {
				t.Error("a non-zero exit is not said")
			}
		})
	}
}
