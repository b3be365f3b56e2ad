package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/releasedir"
)

// rootfsDistChild is `mage rootfs dist` in a process of its own, for a test to kill.
func rootfsDistChild() int {
	cfg, err := config.Load(os.Getenv("SUML_TEST_ROOT"), nil)
	if err == nil {
		_, err = Rootfs(context.Background(), cfg, "", io.Discard)
	}
	if err == nil {
		_, err = Dist(context.Background(), cfg, io.Discard)
	}
	if err != nil {
		fmt.Println("rootfs, dist failed:", err)
		return 1
	}
	return 0
}

func childEnv(t *testing.T, cfg config.Config, mode string) []string {
	return append(os.Environ(), childSwitch+"="+mode, "SUML_TEST_ROOT="+repoRoot(t), "SUML_DIST="+cfg.Paths.Dist,
		"SUML_CACHE="+cfg.Paths.Cache, "SUML_DOWNLOADS="+cfg.Paths.Downloads, "SUML_RECIPES="+cfg.Paths.Recipes,
		"SUML_ROOTFS_RECIPE="+cfg.Rootfs.Recipe)
}

// releaseIntact fails unless dist/release is absent or a whole release.
func releaseIntact(t *testing.T, dist, when string) {
	t.Helper()
	dir := filepath.Join(dist, releasedir.Name)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return
	}
	if _, problems, err := artifact.VerifyDir(dir); err != nil || len(problems) > 0 {
		t.Fatalf("%s: dist/release is half-written: %v %v", when, problems, err)
	}
}

// leftovers lists dist's temporary entries (all but the lock).
func leftovers(dist string) []string {
	entries, _ := os.ReadDir(dist)
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && e.Name() != ".lock" {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestKilledRunsRecover kills `rootfs` + `dist` at points spread over its whole run (tenths of the
// time an unkilled run takes): each time dist holds no half-written output, and a rerun succeeds
// without any cleaning up by hand. Every run makes a new release revision, so dist always writes.
func TestKilledRunsRecover(t *testing.T) {
	cfg := distReady(t)
	ctx := context.Background()
	if _, err := Dist(ctx, cfg, io.Discard); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	_, _, record := manifest.RootfsFiles(cfg.Paths.Dist, cfg.Rootfs.Recipe)
	// run starts rootfs + dist for release revision rev and kills it after delay (0: never); it
	// reports whether the kill came before the run ended.
	run := func(rev int, delay time.Duration) bool {
		os.Remove(record) // so that the child rebuilds the image rather than finding it up to date
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(childEnv(t, cfg, "rootfs+dist"), "SUML_RELEASE_REVISION="+strconv.Itoa(rev))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // fakeroot, mke2fs and debugfs die with it
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		kill := make(<-chan time.Time)
		if delay > 0 {
			kill = time.After(delay)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("unkilled run failed: %v", err)
			}
			return false
		case <-kill:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			// The child's own children (debugfs, mke2fs) may take a moment longer to die; a rerun
			// while one still writes into a temporary folder would race it.
			for deadline := time.Now().Add(10 * time.Second); syscall.Kill(-cmd.Process.Pid, 0) == nil; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the killed run's processes did not go away")
				}
			}
			return true
		}
	}
	start := time.Now()
	run(2, 0)
	whole := time.Since(start)
	killed := 0
	for tenth := 1; tenth <= 9; tenth++ {
		rev := 2 + tenth
		delay := whole * time.Duration(tenth) / 10
		if run(rev, delay) {
			killed++
		}
		releaseIntact(t, cfg.Paths.Dist, fmt.Sprintf("killed after %s", delay))
		cfg.Release.Revision = rev
		if _, err := Rootfs(ctx, cfg, "", io.Discard); err != nil {
			t.Fatalf("rerun after a kill at %s: %v", delay, err)
		}
		if res, err := Dist(ctx, cfg, io.Discard); err != nil || res.Tag != "v6.12.117-"+strconv.Itoa(rev) {
			t.Fatalf("rerun after a kill at %s: %v %v", delay, res.Tag, err)
		}
		releaseIntact(t, cfg.Paths.Dist, "rerun")
		if left := leftovers(cfg.Paths.Dist); len(left) > 0 {
			t.Fatalf("after a kill at %s and a rerun, dist holds %v", delay, left)
		}
	}
	if killed < 3 {
		t.Errorf("only %d of 9 runs were killed before they finished; the test covers too little", killed)
	}
	t.Logf("an unkilled run took %s; %d runs killed at its tenths, each recovered", whole.Round(time.Millisecond), killed)
}

// TestDiskFull fills the disk dist is on while dist writes a new release: the error says so, the
// previous release stays whole, nothing half-written is left, and with space again the rerun works.
// It needs a small tmpfs, which root can mount; CI runs it as root.
func TestDiskFull(t *testing.T) {
	cfg := distReady(t)
	ctx := context.Background()
	small := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", small).Run(); err != nil {
		if os.Getenv(e2eSwitch) == "1" && os.Geteuid() == 0 {
			t.Fatalf("cannot mount a tmpfs as root (the container needs CAP_SYS_ADMIN): %v", err)
		}
		t.Skipf("cannot mount a tmpfs here (%v); CI runs this as root", err)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", small).Run() })
	// dist moves onto the small disk, sparse image and all.
	if out, err := exec.Command("cp", "-a", "--sparse=always", cfg.Paths.Dist+"/.", small).CombinedOutput(); err != nil {
		t.Fatalf("copy dist: %v\n%s", err, out)
	}
	cfg.Paths.Dist = small
	if _, err := Dist(ctx, cfg, io.Discard); err != nil {
		t.Fatal(err)
	}
	// Fill the disk to its last few kilobytes.
	filler, err := os.Create(filepath.Join(small, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(block); err != nil {
			break
		}
	}
	filler.Close()
	cfg.Release.Revision = 2 // a new release, which needs room
	_, err = Dist(ctx, cfg, io.Discard)
	if err == nil || !errors.Is(err, syscall.ENOSPC) && !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("err = %v, want the disk-full error", err)
	}
	releaseIntact(t, small, "disk full")
	m, err := manifest.Verify(filepath.Join(small, releasedir.Name))
	if err != nil || m.Tag != "v6.12.117-1" {
		t.Fatalf("the previous release is not intact: %v %v", m, err)
	}
	if left := leftovers(small); len(left) > 0 {
		t.Errorf("the failed run left %v", left)
	}
	os.Remove(filepath.Join(small, "filler"))
	if res, err := Dist(ctx, cfg, io.Discard); err != nil || res.Tag != "v6.12.117-2" {
		t.Fatalf("rerun with space again: %v %v", res.Tag, err)
	}
	releaseIntact(t, small, "rerun")
}
