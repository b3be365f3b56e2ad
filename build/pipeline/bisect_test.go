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
	"testing"

	"github.com/simple-uml/simple-uml/build/config"
)

// TestBisectRefuses: what mage bisect will not start on, each refused before anything is built or
// checked out, with an error that names the fix.
func TestBisectRefuses(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed (.ci/run installs it)")
	}
	tree := t.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", tree, "-c", "user.name=t", "-c", "user.email=t@example.invalid"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	for _, c := range []string{"one", "two"} {
		os.WriteFile(filepath.Join(tree, "file"), []byte(c), 0o644)
		git("add", "file")
		git("commit", "-q", "-m", c)
	}
	dist := t.TempDir()
	env := map[string]string{"SUML_KERNEL_TREE": tree, "SUML_DIST": dist, "SUML_CACHE": t.TempDir(), "SUML_ROOTFS_RECIPE": "test"}
	script := filepath.Join(t.TempDir(), "check.sh")
	os.WriteFile(script, []byte("true\n"), 0o755)
	ok := BisectRequest{Good: "HEAD~1", Bad: "HEAD", KUnit: "list*"}
	tests := []struct {
		name  string
		env   map[string]string
		req   BisectRequest
		setup func()
		want  string
	}{
		{"no tree", map[string]string{"SUML_KERNEL_TREE": ""}, ok, nil, "set kernel.tree"},
		{"no good commit", nil, BisectRequest{Bad: "HEAD"}, nil, "-good=<commit>"},
		{"a script and a filter", nil, BisectRequest{Good: "HEAD~1", Bad: "HEAD", Script: script, KUnit: "list*"}, nil, "not both"},
		{"an option as a revision", nil, BisectRequest{Good: "--output=/tmp/x", Bad: "HEAD", KUnit: "list*"}, nil, `revision "--output=/tmp/x"`},
		{"no such commit", nil, BisectRequest{Good: "v0.0", Bad: "HEAD", KUnit: "list*"}, nil, `"v0.0" is not a commit`},
		{"a filter that is not one", nil, BisectRequest{Good: "HEAD~1", Bad: "HEAD", KUnit: "x kunit.enable=0"}, nil, "globs"},
		{"no image to boot", nil, BisectRequest{Good: "HEAD~1", Bad: "HEAD", Script: script}, nil, "go tool mage rootfs"},
		{"changes not committed", nil, ok, func() { os.WriteFile(filepath.Join(tree, "file"), []byte("changed"), 0o644) }, "commit or stash"},
		{"a bisect of yours", nil, ok, func() { git("checkout", "-q", "--", "file"); git("bisect", "start", "HEAD", "HEAD~1") }, "git bisect reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tt.env {
				e[k] = v
			}
			cfg := loadConfig(t, e, nil)
			_, err := Bisect(context.Background(), cfg, tt.req, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// The bisect that was going on is still the user's.
	git("bisect", "log")
}

// fakeBisectStages build and check a commit of a tree by its file "state": "broken" does not build,
// "bug" fails the check. built lists the states each build saw; cancelAt cancels the context when
// that many builds have run.
type fakeBisectStages struct {
	tree     string
	built    []string
	cancel   context.CancelFunc
	cancelAt int
}

func (f *fakeBisectStages) stages() bisectStages {
	state := func() string {
		data, _ := os.ReadFile(filepath.Join(f.tree, "state"))
		return strings.TrimSpace(string(data))
	}
	return bisectStages{
		build: func(ctx context.Context, cfg config.Config, log io.Writer) error {
			f.built = append(f.built, state())
			if f.cancelAt > 0 && len(f.built) == f.cancelAt {
				f.cancel()
				return ctx.Err()
			}
			if strings.Contains(state(), "broken") {
				return errors.New("make: *** [Makefile] Error 2")
			}
			return nil
		},
		check: func(ctx context.Context, cfg config.Config, _ BisectRequest, _ string, log io.Writer) error {
			if strings.Contains(state(), "bug") {
				return errors.New("check max-map-count: not ok\nmore detail")
			}
			return nil
		},
	}
}

// bisectTree is a git tree whose commits' file "state" holds states[i], with subject "c<i>".
func bisectTree(t *testing.T, states []string) (string, []string) {
	tree := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", tree, "-c", "user.name=t", "-c", "user.email=t@example.invalid"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	var commits []string
	for i, s := range states {
		os.WriteFile(filepath.Join(tree, "state"), []byte(fmt.Sprintf("%s %d\n", s, i)), 0o644)
		git("add", "state")
		git("commit", "-q", "-m", fmt.Sprintf("c%d", i))
		commits = append(commits, git("rev-parse", "HEAD"))
	}
	return tree, commits
}

// TestBisectVerdicts: bisect's decisions with the build and the check faked: the first bad commit
// found past one that does not build (skipped, with its reason); a run interrupted after a build
// goes on where it stopped without building again; skipped commits that hide the first bad one are
// said to; and the tree's checkout is put back each time.
func TestBisectVerdicts(t *testing.T) {
	tests := []struct {
		name      string
		states    []string
		wantBad   int    // index of the first bad commit; -1 when it cannot be told
		wantError string // in the error when -1
	}{
		{"past a commit that does not build", []string{"ok", "ok", "broken", "ok", "bug", "bug", "bug", "bug"}, 4, ""},
		{"the last commit", []string{"ok", "ok", "ok", "bug"}, 3, ""},
		{"hidden by commits that do not build", []string{"ok", "broken", "broken bug", "bug"}, -1, "do not build hide the first bad one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree, commits := bisectTree(t, tt.states)
			cfg := loadConfig(t, map[string]string{"HOME": t.TempDir(), "SUML_KERNEL_TREE": tree, "SUML_CACHE": t.TempDir(), "SUML_DIST": t.TempDir()}, nil)
			req := BisectRequest{Good: commits[0], Bad: "main", KUnit: "example*"}
			fake := &fakeBisectStages{tree: tree}
			res, err := bisectWith(context.Background(), cfg, req, fake.stages(), io.Discard)
			if tt.wantBad < 0 {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) || !strings.Contains(err.Error(), "could be any of") {
					t.Fatalf("err %v, want %q and git's candidates", err, tt.wantError)
				}
			} else if err != nil || res.FirstBad != commits[tt.wantBad] || res.Subject != fmt.Sprintf("c%d", tt.wantBad) {
				t.Fatalf("first bad %s %q, %v; want %s", res.FirstBad, res.Subject, err, commits[tt.wantBad])
			}
			for _, s := range res.Steps {
				if strings.Contains(tt.states[subjectIndex(s.Subject)], "broken") && (s.Verdict != "skip" || s.Reason != "does not build") {
					t.Errorf("the commit that does not build: %+v", s)
				}
				if s.Verdict == "bad" && s.Reason != "check max-map-count: not ok" {
					t.Errorf("a bad step's reason %q; want the check's first line", s.Reason)
				}
			}
			head, _ := exec.Command("git", "-C", tree, "rev-parse", "HEAD").Output()
			if strings.TrimSpace(string(head)) != commits[len(commits)-1] {
				t.Error("the tree's checkout was not put back")
			}
		})
	}

	t.Run("resumed after Ctrl-C", func(t *testing.T) {
		tree, commits := bisectTree(t, []string{"ok", "ok", "ok", "ok", "bug", "bug", "bug", "bug", "bug"})
		cfg := loadConfig(t, map[string]string{"HOME": t.TempDir(), "SUML_KERNEL_TREE": tree, "SUML_CACHE": t.TempDir(), "SUML_DIST": t.TempDir()}, nil)
		req := BisectRequest{Good: commits[0], Bad: "main", KUnit: "example*"}
		ctx, cancel := context.WithCancel(context.Background())
		first := &fakeBisectStages{tree: tree, cancel: cancel, cancelAt: 2}
		if _, err := bisectWith(ctx, cfg, req, first.stages(), io.Discard); err == nil || !strings.Contains(err.Error(), "run the same command to go on") {
			t.Fatalf("interrupted: %v", err)
		}
		second := &fakeBisectStages{tree: tree}
		res, err := bisectWith(context.Background(), cfg, req, second.stages(), io.Discard)
		if err != nil || res.FirstBad != commits[4] {
			t.Fatalf("resumed: %s, %v", res.FirstBad, err)
		}
		if res.Builds != len(res.Steps)-1 || len(second.built) != res.Builds {
			t.Errorf("resumed: %d builds for %d steps (%v); want the one verdict known from before not built again", res.Builds, len(res.Steps), second.built)
		}
	})
}

// subjectIndex is i of a bisectTree commit's subject "c<i>".
func subjectIndex(subject string) int {
	i, _ := strconv.Atoi(strings.TrimPrefix(subject, "c"))
	return i
}

// TestBisectKunitCheck: a bisect whose check is a KUnit filter runs the real kunit target on what
// each step built (here a stand-in kernel printing real recorded consoles: passing before the bad
// commit, failing from it on).
func TestBisectKunitCheck(t *testing.T) {
	tree, commits := bisectTree(t, []string{"ok", "ok", "bug", "bug"})
	cfg := loadConfig(t, map[string]string{"HOME": t.TempDir(), "SUML_KERNEL_TREE": tree, "SUML_CACHE": t.TempDir(), "SUML_DIST": t.TempDir(), "SUML_BOOT_SANDBOX": "off"}, nil)
	passing, failing := recordedConsole(t, "kunit-6.12.117-um.console"), recordedConsole(t, "kunit-6.12.117-um-failing.console")
	stages := realBisectStages
	stages.build = func(ctx context.Context, cfg config.Config, log io.Writer) error {
		state, _ := os.ReadFile(filepath.Join(tree, "state"))
		console := passing
		if strings.Contains(string(state), "bug") {
			console = failing
		}
		standInKernel(t, cfg.Paths.Dist, console)
		return nil
	}
	res, err := bisectWith(context.Background(), cfg, BisectRequest{Good: commits[0], Bad: "main", KUnit: "example*"}, stages, io.Discard)
	if err != nil || res.FirstBad != commits[2] {
		t.Fatalf("first bad %s, %v; want %s", res.FirstBad, err, commits[2])
	}
	for _, s := range res.Steps {
		if s.Verdict == "bad" && !strings.Contains(s.Reason, "tests failed") {
			t.Errorf("a bad step's reason %q; want kunit's", s.Reason)
		}
	}
}
