package pipeline

import (
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/ktap"
	"github.com/simple-uml/simple-uml/build/uml"
)

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
