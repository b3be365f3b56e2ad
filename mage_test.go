package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMageTargets runs go tool mage as a person would: every target is listed with its doc line,
// the per-run choices are flags that -h documents, and no twin targets or old switches remain.
func TestMageTargets(t *testing.T) {
	mage := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("go", append([]string{"tool", "mage"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("go tool mage %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	list := mage("-l")
	for _, target := range []string{"kernel", "menuconfig", "rootfs", "boot", "test", "debug", "dist", "verify", "release", "fetch", "bump", "bumpPR", "repro", "doctor", "lab", "labTest", "labConsole", "kunit", "bisect", "series", "pkg", "repo"} {
		if !strings.Contains(list, "\n  "+target+" ") {
			t.Errorf("go tool mage -l does not list %s:\n%s", target, list)
		}
	}
	for _, twin := range []string{"rootfsRecipe", "fetchTag", "bumpTo"} {
		if strings.Contains(list, twin) {
			t.Errorf("go tool mage -l still lists %s", twin)
		}
	}
	flags := map[string][]string{
		"rootfs":  {"-recipe=<string>"},
		"release": {"-dryRun=<bool>", "-replace=<bool>", "-series=<string>"},
		"kernel":  {"-series=<string>"},
		"dist":    {"-series=<string>"},
		"fetch":   {"-tag=<string>"},
		"bump":    {"-to=<string>", "-dryRun=<bool>", "-allowEOL=<bool>", "-series=<string>"},
		"bumpPR":  {"-workflow=<string>", "-allowEOL=<bool>"},
		"test":    {"-script=<string>", "-series=<string>"},
		"kunit":   {"-filter=<string>", "-kunitconfig=<string>"},
		"bisect":  {"-good=<string>", "-bad=<string>", "-script=<string>", "-kunit=<string>"},
		"pkg":     {"-out=<string>"},
		"repo":    {"-key=<string>", "-signedBy=<string>", "-arch=<string>"},
	}
	for target, want := range flags {
		help := mage("-h", target)
		_, section, _ := strings.Cut(help, "Flags:")
		documented := map[string]bool{}
		for _, line := range strings.Split(section, "\n") {
			if f, doc, ok := strings.Cut(strings.TrimSpace(line), " "); ok && strings.TrimSpace(doc) != "" {
				documented[f] = true
			}
		}
		for _, f := range want {
			if !documented[f] {
				t.Errorf("go tool mage -h %s does not document %s:\n%s", target, f, help)
			}
		}
	}
	// The CI matrix of series: the repository's kernel.lock pins one.
	if got := strings.TrimSpace(mage("series")); got != `["6.12"]` {
		t.Errorf("go tool mage series = %s", got)
	}
}
