package pipeline

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/rootfs"
)

// configureStandIn is a kernel for the configure boot that reports its INSTALL scripts as the
// configure init does, and the result: the image it is given stays as it is.
func configureStandIn(t *testing.T, result string) string {
	path := filepath.Join(t.TempDir(), "linux")
	script := "#!/bin/sh\n" +
		"echo '" + rootfs.ConfigureStep + " post bb-files-1.0_1 at 1.00s'\n" +
		"echo '" + rootfs.ConfigureStep + " post bb-getty-1.0_1 at 1.25s'\n" +
		"echo '" + rootfs.ConfigureStep + " done at 2.00s'\n" +
		"echo '" + result + "'\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRootfsConfigureBootOnStandIn: rootfs's configure boot and re-imaging with a stand-in kernel:
// the scripts are counted in the record with the kernel's digest and the slowest named; a script that
// failed fails the target naming it and the console log, and leaves no record.
func TestRootfsConfigureBootOnStandIn(t *testing.T) {
	requireImageTools(t)
	repo := newXbpsRepo(t, busyboxPackages(t, true))
	recipes := recipeDir(t, repo, "", nil)
	tests := []struct {
		name, result, wantErr string
	}{
		{"scripts pass", rootfs.ConfigureOK, ""},
		{"a script fails", rootfs.ConfigureFailed + " bb-getty-1.0_1 post: exit status 1", "bb-getty-1.0_1 post"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kernel := configureStandIn(t, tt.result)
			cfg := rootfsConfig(t, recipes, map[string]string{"SUML_ROOTFS_KERNEL": kernel, "SUML_BOOT_SANDBOX": "off"})
			var out bytes.Buffer
			res, err := Rootfs(context.Background(), cfg, "", &out)
			_, _, record := manifest.RootfsFiles(cfg.Paths.Dist, "test")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "configure.log") {
					t.Fatalf("err %v, want %q and the console log", err, tt.wantErr)
				}
				if _, err := os.Stat(record); err == nil {
					t.Error("a failed configure boot left a record")
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if c := res.Record.Configure; c == nil || c.Scripts == 0 || len(c.KernelSHA256) != 64 {
				t.Errorf("configure record %+v", c)
			}
			if !strings.Contains(out.String(), "slowest scripts: bb-getty-1.0_1 post") {
				t.Errorf("output:\n%s", out.String())
			}
		})
	}
}
