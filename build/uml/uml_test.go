package uml

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// script writes an executable that stands in for the kernel binary, to exercise the runner's process
// handling (the real kernel boots in the pipeline's end-to-end test).
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "linux")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBoot(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		until   string
		timeout time.Duration
		want    string // error part; empty for success
		console string
	}{
		{"exits cleanly", `echo "args: $*"; echo "reboot: System halted"`, "", 0, "", "ubd0=/img root=/dev/ubda rw mem=128M con=null con0=fd:0,fd:1"},
		{"marker ends the run", `echo booting; echo READY; sleep 30`, "READY", 10 * time.Second, "", "READY"},
		{"panic", `echo "Kernel panic - not syncing: VFS: Unable to mount root fs"`, "", 0, "kernel panic", ""},
		{"timeout", `echo stuck; sleep 30`, "READY", 300 * time.Millisecond, "timed out", ""},
		{"exit status", `echo dying; exit 4`, "", 0, "exit status 4", ""},
		{"no marker before exit", `echo "reboot: Power down"`, "READY", 0, `without printing "READY"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res, err := Boot(context.Background(), Options{Kernel: script(t, tt.body), Image: "/img", Until: tt.until, Timeout: tt.timeout, Init: "/init"})
			if tt.want != "" {
				var be *Error
				if !errors.As(err, &be) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.Console, tt.console) {
				t.Errorf("console %q lacks %q", res.Console, tt.console)
			}
			if time.Since(start) > 10*time.Second {
				t.Error("runner waited for the guest after the marker")
			}
		})
	}
}

func TestBootLeavesNoProcess(t *testing.T) {
	kernel := script(t, `sleep 31 & echo READY; wait`)
	if _, err := Boot(context.Background(), Options{Kernel: kernel, Image: "/img", Until: "READY"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if out, _ := exec.Command("pgrep", "-f", "^sleep 31$").Output(); len(out) > 0 {
		t.Errorf("a guest process survived: %s", out)
	}
}
