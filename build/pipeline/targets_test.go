package pipeline

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/ktap"
	"github.com/simple-uml/simple-uml/build/uml"
)

// TestTestReport: one failed check or one failed script fails the whole run; all passing passes.
func TestTestReport(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"HOME": t.TempDir()}, nil)
	pass := []uml.CheckResult{{Name: "login", OK: true}, {Name: "network", OK: true}}
	script := func(s ktap.Status) []*ktap.Test { return []*ktap.Test{{Name: "checks.sh", Status: s}} }
	tests := []struct {
		name    string
		checks  []uml.CheckResult
		scripts []*ktap.Test
		want    ktap.Status
	}{
		{"all pass", pass, script(ktap.Pass), ktap.Pass},
		{"a check fails", append(pass, uml.CheckResult{Name: "dns", Detail: "no answer"}), script(ktap.Pass), ktap.Fail},
		{"a script fails", pass, script(ktap.Fail), ktap.Fail},
		{"no scripts", pass, nil, ktap.Pass},
	}
	for _, tt := range tests {
		r := testReport(cfg, tt.checks, tt.scripts)
		if r.Status != tt.want || r.Name != "mage test "+cfg.Boot.Recipe || len(r.Subtests) != 1+len(tt.scripts) || len(r.Subtests[0].Subtests) != len(tt.checks) {
			t.Errorf("%s: %+v", tt.name, r)
		}
	}
}

// TestInfoTargets: version, settings and cache say what they are asked, from the loaded settings.
func TestInfoTargets(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"HOME": t.TempDir(), "SUML_CACHE": t.TempDir(), "SUML_DIST": t.TempDir()}, nil)
	ctx := context.Background()
	var out bytes.Buffer
	if err := Version(ctx, cfg, &out); err != nil {
		t.Fatal(err)
	}
	head, _ := exec.Command("git", "-C", cfg.Root, "rev-parse", "HEAD").Output()
	if !strings.Contains(out.String(), "commit     "+strings.TrimSpace(string(head))) || !strings.Contains(out.String(), "kernel     "+cfg.Pin.Version) {
		t.Errorf("version:\n%s", out.String())
	}

	out.Reset()
	getenv := func(k string) string { return map[string]string{"SUML_TEST_SCRIPTS": "x"}[k] }
	if err := Settings(cfg, "test", getenv, &out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "test.scripts") || !strings.Contains(s, "(from SUML_TEST_SCRIPTS)") || !strings.Contains(s, `= ""`) {
		t.Errorf("settings -target=test:\n%s", s)
	}
	if err := Settings(cfg, "nope", getenv, &out); err == nil {
		t.Error("settings of an unknown target")
	}

	os.MkdirAll(filepath.Join(cfg.Paths.Cache, "build", "6.12-x86_64"), 0o755)
	os.WriteFile(filepath.Join(cfg.Paths.Cache, "build", "6.12-x86_64", "vmlinux.o"), make([]byte, 10000), 0o644)
	out.Reset()
	if err := Cache(ctx, cfg, false, false, &out); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "build ") || !strings.Contains(s, "kernel build folders") || !strings.Contains(s, "total") {
		t.Errorf("cache:\n%s", s)
	}
	out.Reset()
	if err := Cache(ctx, cfg, true, true, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Paths.Cache, "build")); err == nil || !strings.Contains(out.String(), "downloads kept") {
		t.Errorf("cache -clean left the build folder:\n%s", out.String())
	}
}

func TestGdbSourceArgs(t *testing.T) {
	dir := t.TempDir()
	vmlinux := filepath.Join(dir, "linux-debug")
	if args := gdbSourceArgs(vmlinux); args != nil {
		t.Errorf("without a .source file: %q", args)
	}
	os.WriteFile(vmlinux+".source", []byte("/cache/trees/linux-6.12\n"), 0o644)
	if args := gdbSourceArgs(vmlinux); len(args) != 2 || !strings.HasSuffix(args[1], " /cache/trees/linux-6.12") {
		t.Errorf("args %q", args)
	}
}

// TestDoctor: doctor lists where each tool is and passes, or fails naming the packages to install.
func TestDoctor(t *testing.T) {
	var out bytes.Buffer
	err := Doctor(&out)
	if !strings.Contains(out.String(), "make") || !strings.Contains(out.String(), "gdb") {
		t.Errorf("doctor's listing:\n%s", out.String())
	}
	if err == nil && !strings.Contains(out.String(), "all host tools the targets need are present") {
		t.Errorf("doctor passed without saying so:\n%s", out.String())
	}
	if err != nil && !strings.Contains(err.Error(), "apt-get install") {
		t.Errorf("doctor's failure names no install command: %v", err)
	}
}
