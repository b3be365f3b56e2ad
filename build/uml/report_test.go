package uml

import (
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/ktap"
)

// TestTestReport: one failed check or one failed script fails the whole run, and is listed by
// Failed with what it found; all passing passes.
func TestTestReport(t *testing.T) {
	pass := []CheckResult{{Name: "login", OK: true}, {Name: "network", OK: true}}
	script := func(s ktap.Status) []*ktap.Test { return []*ktap.Test{{Name: "checks.sh", Status: s}} }
	tests := []struct {
		name    string
		checks  []CheckResult
		scripts []*ktap.Test
		want    ktap.Status
		failed  []string // what Failed lists, each the start of a line
	}{
		{"all pass", pass, script(ktap.Pass), ktap.Pass, nil},
		{"a check fails", append(pass, CheckResult{Name: "dns", Detail: "no answer"}), script(ktap.Pass), ktap.Fail, []string{"dns: no answer"}},
		{"a script fails", pass, script(ktap.Fail), ktap.Fail, []string{"script checks.sh: "}},
		{"no scripts", pass, nil, ktap.Pass, nil},
	}
	for _, tt := range tests {
		report := TestReport{Checks: tt.checks, Scripts: tt.scripts}
		r := report.Tree("mage test void-minimal")
		if r.Status != tt.want || r.Name != "mage test void-minimal" || len(r.Subtests) != 1+len(tt.scripts) || len(r.Subtests[0].Subtests) != len(tt.checks) {
			t.Errorf("%s: %+v", tt.name, r)
		}
		failed := report.Failed()
		if len(failed) != len(tt.failed) {
			t.Fatalf("%s: failed %q, want %q", tt.name, failed, tt.failed)
		}
		for i, f := range tt.failed {
			if !strings.HasPrefix(failed[i], f) {
				t.Errorf("%s: failed %q, want %q", tt.name, failed[i], f)
			}
		}
	}
}
