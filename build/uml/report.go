package uml

import (
	"fmt"
	"time"

	"github.com/simple-uml/simple-uml/build/ktap"
)

// BootChecks are the checks of a test boot (`mage test`), as shell commands for the console of a
// guest booting a root filesystem image: the kernel's release, the image's file system and package database, no
// kernel modules, and, when service is given, the door to the host's loopback (open with
// hostAccess, else closed).
func BootChecks(release string, pkgvers []string, service *HostService, hostAccess bool) []Check {
	checks := []Check{
		{Name: "kernel release", Command: "uname -r", Judge: Equals(release)},
		{Name: "root file system", Command: `awk '$2=="/"{print $3}' /proc/mounts | tail -n 1`, Judge: Equals("ext4")},
		{Name: "root writable", Command: "touch /.suml-test && rm /.suml-test && echo writable", Judge: Equals("writable")},
		XbpsDatabaseCheck(pkgvers),
		NoModulesCheck(),
	}
	if service != nil {
		checks = append(checks, service.Check(hostAccess))
	}
	return checks
}

// TestReport is what a test boot found.
type TestReport struct {
	Version string        `json:"version"`
	Image   string        `json:"image"`
	Ready   time.Duration `json:"ready_ns"` // kernel start to the ready marker
	Checks  []CheckResult `json:"checks"`
	Scripts []*ktap.Test  `json:"scripts,omitempty"` // the test scripts' results
}

// Failed lists the checks and scripts that did not pass.
func (r TestReport) Failed() []string {
	out := FailedChecks(r.Checks)
	for _, s := range r.Scripts {
		if s.Status != ktap.Pass {
			sum := ktap.Summarize(s)
			out = append(out, fmt.Sprintf("script %s: %d of %d tests failed %s", s.Name, sum.Failed+sum.Errors, sum.Tests, s.Diagnostic))
		}
	}
	return out
}

// FailedChecks lists the checks that did not pass, each with what it found.
func FailedChecks(results []CheckResult) []string {
	var out []string
	for _, c := range results {
		if !c.OK {
			out = append(out, c.Name+": "+c.Detail)
		}
	}
	return out
}

// Tree is the report's results as one tree named name, for the JSON and JUnit reports: the checks,
// then each script's tests. One failed check or script fails the whole.
func (r TestReport) Tree(name string) *ktap.Test {
	own := &ktap.Test{Name: "checks", Status: ktap.Pass}
	for _, c := range r.Checks {
		leaf := &ktap.Test{Name: c.Name, Status: ktap.Pass, Diagnostic: c.Detail}
		if !c.OK {
			leaf.Status, own.Status = ktap.Fail, ktap.Fail
		}
		own.Subtests = append(own.Subtests, leaf)
	}
	root := &ktap.Test{Name: name, Status: own.Status, Subtests: append([]*ktap.Test{own}, r.Scripts...)}
	for _, s := range r.Scripts {
		if s.Status != ktap.Pass {
			root.Status = ktap.Fail
		}
	}
	return root
}
