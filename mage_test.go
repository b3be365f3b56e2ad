package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/config"
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

// TestMageInterface: what a person tries first answers as a tool should: an unknown target lists
// the targets, version names the commit, settings lists what a target reads with its variable and
// default (and every target has its tables declared), and cache shows the cache.
func TestMageInterface(t *testing.T) {
	home := t.TempDir()
	mage := func(env []string, args ...string) (string, error) {
		cmd := exec.Command("go", append([]string{"tool", "mage"}, args...)...)
		cmd.Env = append(os.Environ(), append([]string{"SUML_CACHE=" + filepath.Join(home, "cache")}, env...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	list, err := mage(nil, "-l")
	if err != nil {
		t.Fatal(err)
	}
	targets := mageTargets(list)
	for _, name := range targets {
		if _, ok := config.TargetTables[name]; !ok {
			t.Errorf("target %s has no entry in config.TargetTables", name)
		}
	}
	if len(config.TargetTables) != len(targets) {
		t.Errorf("config.TargetTables has %d targets, mage lists %d: %v", len(config.TargetTables), len(targets), targets)
	}

	head, _ := exec.Command("git", "rev-parse", "HEAD").Output()
	tests := []struct {
		args    []string
		env     []string
		fails   bool
		want    []string
		notWant []string
	}{
		{args: []string{"bogus"}, fails: true, want: []string{`unknown target "bogus"`, " kernel,", " boot,", " version"}},
		{args: []string{"-v", "kernl"}, fails: true, want: []string{`unknown target "kernl"`, " kernel,"}},
		{args: []string{"series"}, env: []string{"MAGEFILE_ENABLE_COLOR=1"}, want: []string{`"6.12"`}},
		{args: []string{"version"}, want: []string{"simple-uml ", strings.TrimSpace(string(head)), "go1.", "mage       v1."}},
		{args: []string{"settings", "-target=boot"}, env: []string{"SUML_BOOT_MEM=512M"},
			want: []string{"boot.mem", "SUML_BOOT_MEM", "= 512M (from SUML_BOOT_MEM)", "default 256M", "boot.sandbox", "paths.dist"}, notWant: []string{"kernel.mirror", "release.revision"}},
		{args: []string{"settings", "-target=nope"}, fails: true, want: []string{`unknown target "nope"`, "labTest"}},
		{args: []string{"cache"}, want: []string{"cache " + filepath.Join(home, "cache"), "total", "-clean"}},
		{args: []string{"cache", "-clean"}, want: []string{"cleaned"}},
	}
	for _, tt := range tests {
		out, err := mage(tt.env, tt.args...)
		if (err != nil) != tt.fails {
			t.Errorf("go tool mage %v: %v, want failure %v\n%s", tt.args, err, tt.fails, out)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("go tool mage %v does not say %q:\n%s", tt.args, w, out)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(out, w) {
				t.Errorf("go tool mage %v says %q:\n%s", tt.args, w, out)
			}
		}
	}
}

// mageTargets reads the target names from mage's listing (-l): the indented lines under "Targets:".
func mageTargets(listing string) []string {
	var names []string
	for _, line := range strings.Split(listing, "\n") {
		if !strings.HasPrefix(line, "  ") {
			continue
		}
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, strings.TrimSuffix(f[0], "*")) // mage stars the default target
		}
	}
	return names
}

// TestMageTargetsListing: the listing's reader takes each target's name, without mage's star on
// the default one.
func TestMageTargetsListing(t *testing.T) {
	listing := "simple-uml builds User-Mode Linux.\n\nTargets:\n  bisect        finds the commit\n  boot*         boots dist/'s pair\n  labConsole    attaches\n"
	if got := strings.Join(mageTargets(listing), " "); got != "bisect boot labConsole" {
		t.Errorf("mageTargets = %q", got)
	}
}
