package pipeline

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunSteps: steps run in order, a skipped one is noted and not run, and the first failure stops
// the rest with an error that names its step and still unwraps to the cause.
func TestRunSteps(t *testing.T) {
	cause := errors.New("disk full")
	var ran []string
	mark := func(name string, err error) func(context.Context) error {
		return func(context.Context) error { ran = append(ran, name); return err }
	}
	timer := newStepTimer()
	err := runSteps(context.Background(), timer,
		step{name: "fetch", run: mark("fetch", nil)},
		step{name: "unpack", run: mark("unpack", nil), skip: func() bool { return true }},
		step{name: "build", run: mark("build", cause)},
		step{name: "install", run: mark("install", nil)},
	)
	var stepErr *StepError
	if !errors.As(err, &stepErr) || stepErr.Step != "build" || !errors.Is(err, cause) || err.Error() != "build step: disk full" {
		t.Errorf("error %v; want the build step named, unwrapping to the cause", err)
	}
	if strings.Join(ran, " ") != "fetch build" {
		t.Errorf("ran %v; want fetch and build only", ran)
	}
	if got := timer.String(); !strings.HasPrefix(got, "fetch ") || !strings.Contains(got, "unpack skipped") || strings.Contains(got, "install") {
		t.Errorf("timings %q", got)
	}

	// A cause that already names its step is not prefixed twice.
	named := &StepError{Step: "configure", Err: errors.New("configure kernel 6.12.117: make defconfig failed")}
	if named.Error() != "configure kernel 6.12.117: make defconfig failed" {
		t.Errorf("named twice: %q", named.Error())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran = nil
	if err := runSteps(ctx, newStepTimer(), step{name: "fetch", run: mark("fetch", nil)}); !errors.Is(err, context.Canceled) || len(ran) > 0 {
		t.Errorf("a cancelled run: %v, ran %v", err, ran)
	}
}

// TestNestedRun: a target run as a step of another (rootfs builds its kernel) runs within the outer
// run: it takes no second lock, which would wait for ever, and logs nothing of its own; a run of
// another cache is not nested.
func TestNestedRun(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"HOME": t.TempDir(), "SUML_CACHE": t.TempDir(), "SUML_DIST": t.TempDir()}, nil)
	ctx, outer, err := startRun(context.Background(), cfg, "outer", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer outer.end()
	if outer.nested {
		t.Fatal("the first run is nested")
	}
	innerCtx, inner, err := startRun(ctx, cfg, "inner", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !inner.nested || innerCtx != ctx {
		t.Errorf("the inner run is not nested in the outer")
	}
	inner.log("kernel", "6.12.3", time.Now(), "")
	inner.end()

	// The same cache with a dist of its own (a bisect step's): nested, and that dist swept.
	stepDist := t.TempDir()
	os.WriteFile(filepath.Join(stepDist, ".kernel.tmp-123"), nil, 0o644)
	step := cfg
	step.Paths.Dist = stepDist
	_, inStep, err := startRun(ctx, step, "bisect step", io.Discard)
	if err != nil || !inStep.nested {
		t.Fatalf("a run with another dist: %+v, %v", inStep, err)
	}
	if _, err := os.Stat(filepath.Join(stepDist, ".kernel.tmp-123")); err == nil {
		t.Error("a nested run with a dist of its own did not sweep it")
	}

	other := cfg
	other.Paths.Cache, other.Paths.Dist = t.TempDir(), t.TempDir()
	_, separate, err := startRun(ctx, other, "other cache", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if separate.nested {
		t.Error("a run of another cache is nested")
	}
	separate.end()
	if matches, _ := filepath.Glob(filepath.Join(cfg.Paths.Dist, "*")); len(matches) > 0 {
		t.Errorf("a nested run wrote %v", matches)
	}
}
