package bisect

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/gitrepo"
)

// TestStepVerdicts: a step's verdict from its stages: a commit that does not build is skipped, one
// whose check fails is bad with the check's first line as the reason, and Ctrl-C during a stage
// is no verdict but an error; what a stage printed is in the step's log.
func TestStepVerdicts(t *testing.T) {
	fails := func(msg string) func(context.Context, io.Writer) error {
		return func(_ context.Context, log io.Writer) error {
			io.WriteString(log, "stage output\n")
			if msg == "" {
				return nil
			}
			return errors.New(msg)
		}
	}
	cancels := func(cancel context.CancelFunc) func(context.Context, io.Writer) error {
		return func(ctx context.Context, _ io.Writer) error { cancel(); return ctx.Err() }
	}
	tests := []struct {
		name        string
		build       string // the build's error; "" passes
		check       string
		cancelBuild bool
		want        gitrepo.Verdict
		wantReason  string
	}{
		{name: "good", want: gitrepo.Good},
		{name: "does not build", build: "make: *** Error 2", check: "not reached", want: gitrepo.Skip, wantReason: "does not build"},
		{name: "check fails", check: "check max-map-count: not ok\nmore detail", want: gitrepo.Bad, wantReason: "check max-map-count: not ok"},
		{name: "interrupted", cancelBuild: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stages := Stages{Build: fails(tt.build), Check: fails(tt.check)}
			if tt.cancelBuild {
				stages.Build = cancels(cancel)
			}
			s := Step{Log: filepath.Join(t.TempDir(), "step.log")}
			err := s.test(ctx, stages)
			if tt.cancelBuild {
				if !errors.Is(err, context.Canceled) || s.Verdict != "" {
					t.Fatalf("interrupted: verdict %q, %v; want no verdict and the context's error", s.Verdict, err)
				}
				return
			}
			if err != nil || s.Verdict != tt.want || s.Reason != tt.wantReason {
				t.Fatalf("verdict %q (%q), %v; want %q (%q)", s.Verdict, s.Reason, err, tt.want, tt.wantReason)
			}
			log, _ := os.ReadFile(s.Log)
			if !strings.Contains(string(log), "stage output") || (tt.want != gitrepo.Good) != strings.Contains(string(log), "failed: ") {
				t.Errorf("the step's log:\n%s", log)
			}
		})
	}
}

// TestOpenKeepsVerdicts: the same bisect opened again reads the verdicts the first left, another
// check is another bisect with a folder of its own, and a steps.json that cannot be read is refused
// with the fix.
func TestOpenKeepsVerdicts(t *testing.T) {
	ctx := context.Background()
	repo, commits := newRepo(t, 3)
	root := t.TempDir()
	first, err := Open(ctx, repo, commits[0], "main", root, "kunit:example*")
	if err != nil {
		t.Fatal(err)
	}
	known := Step{Commit: commits[1], Verdict: gitrepo.Bad, Reason: "check failed"}
	if err := files.WriteJSON(first.stepsFile(), []Step{known}); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, repo, commits[0], commits[2][:12], root, "kunit:example*")
	if err != nil || again.Dir() != first.Dir() || again.known[commits[1]] != known {
		t.Fatalf("opened again: folder %s (first %s), known %v, %v", again.Dir(), first.Dir(), again.known, err)
	}
	other, err := Open(ctx, repo, commits[0], "main", root, "test:void-minimal")
	if err != nil || other.Dir() == first.Dir() || len(other.known) != 0 {
		t.Fatalf("another check: folder %s, known %v, %v; want a folder of its own", other.Dir(), other.known, err)
	}
	os.WriteFile(first.stepsFile(), []byte("{not json"), 0o644)
	if _, err := Open(ctx, repo, commits[0], "main", root, "kunit:example*"); err == nil || !strings.Contains(err.Error(), "remove it to start over") {
		t.Errorf("a broken steps.json: %v", err)
	}
}

// newRepo is a git repository with commits c0..c(n-1) on branch main, and their hashes.
func newRepo(t *testing.T, n int) (gitrepo.Repo, []string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed (.ci/run installs it)")
	}
	const script = `git init -q -b main && i=0 && while [ $i -lt "$1" ]; do
		echo $i > state && git add state && git -c user.name=t -c user.email=t@example.invalid commit -qm c$i && i=$((i+1))
	done && git rev-list --reverse main`
	cmd := exec.Command("sh", "-c", script, "sh", strconv.Itoa(n))
	cmd.Dir = t.TempDir()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("a repository of %d commits: %v", n, err)
	}
	return gitrepo.Repo{Dir: cmd.Dir, Log: io.Discard}, strings.Fields(string(out))
}
