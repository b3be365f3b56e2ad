package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeRoot(t *testing.T, toml, lock string) string {
	t.Helper()
	root := t.TempDir()
	if toml != "" {
		os.WriteFile(filepath.Join(root, FileName), []byte(toml), 0o644)
	}
	if lock != "" {
		os.WriteFile(filepath.Join(root, LockName), []byte(lock), 0o644)
	}
	return root
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadRepositoryConfig(t *testing.T) {
	cfg, err := Load(filepath.Join("..", ".."), envOf(map[string]string{"HOME": "/home/u"}))
	if err != nil {
		t.Fatalf("the repository's own %s and %s do not load: %v", FileName, LockName, err)
	}
	if cfg.Kernel.Series != "6.12" || cfg.Pin.Version == "" || cfg.Kernel.TrustedKeys[0] != "B8868C80BA62A1FFFAF5FDA9632D3A06589DA6B1" {
		t.Errorf("unexpected defaults: %+v %+v", cfg.Kernel, cfg.Pin)
	}
	if cfg.Paths.Cache != "/home/u/.cache/simple-uml" || cfg.Paths.Downloads != "/home/u/.cache/simple-uml/downloads" {
		t.Errorf("cache = %s, downloads = %s, want the XDG default under HOME", cfg.Paths.Cache, cfg.Paths.Downloads)
	}
	if !filepath.IsAbs(cfg.Paths.Dist) || filepath.Base(cfg.Paths.Dist) != "dist" {
		t.Errorf("dist = %s", cfg.Paths.Dist)
	}
}

func TestLoad(t *testing.T) {
	lock := "version = \"6.12.117\"\nsha256 = \"" + strings.Repeat("ab", 32) + "\"\n"
	tests := []struct {
		name    string
		toml    string
		lock    string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr string
	}{
		{
			name: "env overrides every kind of key",
			toml: "[kernel]\nmirror = \"https://mirror.example/pub/linux/kernel\"\njobs = 3\n",
			lock: lock,
			env: map[string]string{
				"SUML_KERNEL_MIRROR": "http://127.0.0.1:8080/k", "SUML_KERNEL_JOBS": "7", "SUML_CACHE": "/c",
				"SUML_KERNEL_KEYS": "a.asc, https://k/b.asc", "XDG_CACHE_HOME": "/x", "SUML_DIST": "out",
			},
			check: func(t *testing.T, c Config) {
				if c.Kernel.Mirror != "http://127.0.0.1:8080/k" || c.Jobs() != 7 || c.Paths.Cache != "/c" || c.Paths.Downloads != "/c/downloads" {
					t.Errorf("overrides not applied: %+v %+v", c.Kernel, c.Paths)
				}
				if len(c.Kernel.Keys) != 2 || c.Kernel.Keys[1] != "https://k/b.asc" {
					t.Errorf("keys = %q", c.Kernel.Keys)
				}
				if c.Paths.Dist != filepath.Join(c.Root, "out") {
					t.Errorf("relative dist not under root: %s", c.Paths.Dist)
				}
			},
		},
		{
			name: "another version drops the pinned sha256",
			lock: lock,
			env:  map[string]string{"SUML_KERNEL_VERSION": "6.12.118"},
			check: func(t *testing.T, c Config) {
				if c.Pin.Version != "6.12.118" || c.Pin.SHA256 != "" {
					t.Errorf("lock = %+v", c.Pin)
				}
			},
		},
		{
			name: "XDG cache",
			lock: lock,
			env:  map[string]string{"XDG_CACHE_HOME": "/xdg", "HOME": "/home/u"},
			check: func(t *testing.T, c Config) {
				if c.Paths.Cache != "/xdg/simple-uml" {
					t.Errorf("cache = %s", c.Paths.Cache)
				}
			},
		},
		{name: "misspelt key", toml: "[kernel]\nmirorr = \"x\"\n", lock: lock, wantErr: "unknown key(s) kernel.mirorr"},
		{name: "bad toml", toml: "[kernel\n", lock: lock, wantErr: FileName},
		{name: "bad jobs", lock: lock, env: map[string]string{"SUML_KERNEL_JOBS": "many"}, wantErr: "SUML_KERNEL_JOBS"},
		{name: "bad jobs by the old name", lock: lock, env: map[string]string{"SUML_JOBS": "-1"}, wantErr: "SUML_JOBS=\"-1\": want a whole number, 0 or more"},
		{name: "an old name is read, with a note", lock: lock, env: map[string]string{"SUML_JOBS": "3", "SUML_PREVIOUS_MANIFEST": "/m.json"},
			check: func(t *testing.T, c Config) {
				if c.Kernel.Jobs != 3 || c.Release.Previous != "/m.json" {
					t.Errorf("old names not read: jobs %d, previous %q", c.Kernel.Jobs, c.Release.Previous)
				}
				if notes := strings.Join(c.Notes, "\n"); !strings.Contains(notes, "set SUML_KERNEL_JOBS") || !strings.Contains(notes, "set SUML_RELEASE_PREVIOUS") {
					t.Errorf("notes: %q", c.Notes)
				}
			}},
		{name: "the new name wins over the old", lock: lock, env: map[string]string{"SUML_JOBS": "3", "SUML_KERNEL_JOBS": "5"},
			check: func(t *testing.T, c Config) {
				if c.Kernel.Jobs != 5 || len(c.Notes) != 0 {
					t.Errorf("jobs %d, notes %q", c.Kernel.Jobs, c.Notes)
				}
			}},
		{name: "a whole number in the file below its least", toml: "[release]\nrevision = 0\n", lock: lock, wantErr: "release.revision = 0: want 1 or more"},
		{name: "no version", wantErr: "has no version"},
		{name: "local tarball needs no version", env: map[string]string{"SUML_KERNEL_TARBALL": "/usr/src/linux.tar.xz"}},
		{name: "short sha256", lock: "version = \"6.1\"\nsha256 = \"abc\"\n", wantErr: "not 64 hex digits"},
		{name: "sha256 not hex", lock: "version = \"6.1\"\nsha256 = \"" + strings.Repeat("zz", 32) + "\"\n", wantErr: "not 64 hex digits"},
		{name: "unknown lock key", lock: "version = \"6.1\"\nsha512 = \"abc\"\n", wantErr: "unknown key(s) sha512"},
		{name: "subarch", lock: lock, env: map[string]string{"SUML_KERNEL_SUBARCH": "arm64"}, wantErr: "kernel.subarch"},
		{name: "a tree and a tarball", lock: lock, env: map[string]string{"SUML_KERNEL_TREE": "/src/linux", "SUML_KERNEL_TARBALL": "/src/linux.tar.xz"}, wantErr: "keep one"},
		{name: "a tree needs no version", env: map[string]string{"SUML_KERNEL_TREE": "/src/linux"}},
		{name: "ccache remote storage", lock: lock, env: map[string]string{"SUML_KERNEL_CC_WRAPPER": "ccache", "SUML_KERNEL_CCACHE_REMOTE": "redis://127.0.0.1:6379|connect-timeout=500"}},
		{name: "ccache remote storage without ccache", lock: lock, env: map[string]string{"SUML_KERNEL_CCACHE_REMOTE": "redis://127.0.0.1:6379"}, wantErr: "cc_wrapper = \"ccache\""},
		{name: "ccache remote storage with a password", lock: lock, env: map[string]string{"SUML_KERNEL_CC_WRAPPER": "ccache", "SUML_KERNEL_CCACHE_REMOTE": "redis://:secret@cache:6379"}, wantErr: "holds a secret"},
		{name: "ccache remote storage with a token", lock: lock, env: map[string]string{"SUML_KERNEL_CC_WRAPPER": "ccache", "SUML_KERNEL_CCACHE_REMOTE": "http://cache/ccache|bearer-token=abc"}, wantErr: "holds a secret"},
		{name: "ccache remote storage that is not a URL", lock: lock, env: map[string]string{"SUML_KERNEL_CC_WRAPPER": "ccache", "SUML_KERNEL_CCACHE_REMOTE": "cache:6379"}, wantErr: "remote storage URL"},
		{
			name: "host access from the file and the environment",
			toml: "[boot]\nnet = \"user\"\nhost_access = true\n",
			lock: lock,
			check: func(t *testing.T, c Config) {
				if c.Boot.Net != "user" || !c.Boot.HostAccess {
					t.Errorf("boot = %+v", c.Boot)
				}
			},
		},
		{name: "host access off by the environment", toml: "[boot]\nhost_access = true\n", lock: lock, env: map[string]string{"SUML_BOOT_HOST_ACCESS": "false"},
			check: func(t *testing.T, c Config) {
				if c.Boot.HostAccess {
					t.Error("SUML_BOOT_HOST_ACCESS=false left the door open")
				}
			}},
		{name: "host access not a boolean", lock: lock, env: map[string]string{"SUML_BOOT_HOST_ACCESS": "yes please"}, wantErr: "SUML_BOOT_HOST_ACCESS"},
		{name: "slirp is gone", lock: lock, env: map[string]string{"SUML_BOOT_NET": "slirp"}, wantErr: `set boot.net = "user"`},
		{name: "auto is gone", toml: "[boot]\nnet = \"auto\"\n", lock: lock, wantErr: `set boot.net = "user"`},
		{name: "a typo of user", lock: lock, env: map[string]string{"SUML_BOOT_NET": "usr"}, wantErr: `boot.net = "usr": want "none", "user"`},
		{name: "a UML transport without its prefix", lock: lock, env: map[string]string{"SUML_BOOT_NET": "tuntap,,,tap0"}, wantErr: `spelled "uml:tuntap,,,tap0"`},
		{name: "a UML transport", lock: lock, env: map[string]string{"SUML_BOOT_NET": "uml:tuntap,,,tap0"},
			check: func(t *testing.T, c Config) {
				if c.Boot.Net != "uml:tuntap,,,tap0" {
					t.Errorf("boot.net = %q", c.Boot.Net)
				}
			}},
		{name: "not a UML transport", lock: lock, env: map[string]string{"SUML_BOOT_NET": "uml:tap0"}, wantErr: `"tap0" is not a UML transport`},
		{name: "a transport adding kernel parameters", lock: lock, env: map[string]string{"SUML_BOOT_NET": "uml:tuntap,,,tap0 ubd1=/etc/shadow"}, wantErr: "no white space"},
		{name: "memory not a size", lock: lock, env: map[string]string{"SUML_BOOT_MEM": "abc"}, wantErr: `boot.mem (SUML_BOOT_MEM) "abc"`},
		{name: "memory adding kernel parameters", toml: "[boot]\nmem = \"128M ubd1=/etc/shadow\"\n", lock: lock, wantErr: `boot.mem (SUML_BOOT_MEM) "128M ubd1=/etc/shadow"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeRoot(t, tt.toml, tt.lock)
			env := map[string]string{"HOME": "/home/u"}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := Load(root, envOf(env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}
