package pipeline

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

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
