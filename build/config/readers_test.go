package config

import (
	"strings"
	"testing"
)

func TestSettingsFor(t *testing.T) {
	cfg, err := Load("../..", func(k string) string {
		return map[string]string{"HOME": t.TempDir(), "SUML_BOOT_MEM": "512M", "SUML_BOOT_HOST_ACCESS": "true", "SUML_TEST_SCRIPTS": "a.sh,b.sh"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target string
		values map[string]string // setting name -> its value in cfg
		absent []string
	}{
		{"boot", map[string]string{"boot.mem": "512M", "boot.host_access": "true", "boot.timeout": "60", "paths.dist": cfg.Paths.Dist}, []string{"kernel.series", "test.scripts"}},
		{"test", map[string]string{"test.scripts": cfg.Root + "/a.sh," + cfg.Root + "/b.sh", "kernel.lock version": cfg.Pin.Version}, nil},
		{"doctor", map[string]string{}, []string{"paths.dist"}},
		{"", map[string]string{"release.revision": "1"}, nil},
	}
	for _, tt := range tests {
		settings, err := SettingsFor(tt.target)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, s := range settings {
			got[s.Name()] = s.Value(&cfg)
		}
		for name, want := range tt.values {
			if v, ok := got[name]; !ok || v != want {
				t.Errorf("%s: %s = %q (listed %v), want %q", tt.target, name, v, ok, want)
			}
		}
		for _, name := range tt.absent {
			if _, ok := got[name]; ok {
				t.Errorf("%s lists %s", tt.target, name)
			}
		}
	}
	if _, err := SettingsFor("bogus"); err == nil || !strings.Contains(err.Error(), "labTest") {
		t.Errorf("an unknown target: %v; want the targets listed", err)
	}
}
