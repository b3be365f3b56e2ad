package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// newRepo makes a git repository with commits c0..c(n-1), each writing its number to value.txt,
// on branch main, and returns it with the commits' hashes.
func newRepo(t *testing.T, n int) (Repo, []string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed (.ci/run installs it)")
	}
	dir := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=t",
			"GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	var commits []string
	for i := range n {
		os.WriteFile(filepath.Join(dir, "value.txt"), []byte(fmt.Sprint(i)), 0o644)
		git("add", "value.txt")
		git("commit", "-q", "-m", fmt.Sprintf("c%d", i))
		commits = append(commits, git("rev-parse", "HEAD"))
	}
	return Repo{Dir: dir}, commits
}

func TestDescribe(t *testing.T) {
	ctx := context.Background()
	r, commits := newRepo(t, 2)
	head, err := r.Head(ctx)
	if err != nil || head != commits[1] {
		t.Fatalf("Head = %q, %v; want %s", head, err, commits[1])
	}
	if dirty, err := r.Dirty(ctx); err != nil || dirty {
		t.Errorf("a clean tree: dirty %v, %v", dirty, err)
	}
	os.WriteFile(filepath.Join(r.Dir, "untracked.txt"), []byte("x"), 0o644)
	if dirty, _ := r.Dirty(ctx); dirty {
		t.Error("an untracked file made the tree dirty")
	}
	os.WriteFile(filepath.Join(r.Dir, "value.txt"), []byte("changed"), 0o644)
	if dirty, _ := r.Dirty(ctx); !dirty {
		t.Error("a changed tracked file left the tree clean")
	}
	if when, err := r.Time(ctx, head); err != nil || when.Year() != 2026 {
		t.Errorf("Time = %v, %v", when, err)
	}
	if _, err := (Repo{Dir: t.TempDir()}).Head(ctx); !errors.Is(err, ErrNotGit) {
		t.Errorf("a plain folder: %v", err)
	}
}

func TestResolve(t *testing.T) {
	ctx := context.Background()
	r, commits := newRepo(t, 3)
	for rev, want := range map[string]string{"HEAD": commits[2], "HEAD~2": commits[0], "main^": commits[1], commits[1][:10]: commits[1]} {
		if got, err := r.Resolve(ctx, rev); err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %s", rev, got, err, want)
		}
	}
	// Options and things that are not commits are refused before or by git, naming the revision.
	for _, rev := range []string{"--output=/tmp/x", "-h", "no-such-branch", "", "a b", "HEAD:value.txt"} {
		if got, err := r.Resolve(ctx, rev); err == nil || !strings.Contains(err.Error(), "revision") {
			t.Errorf("Resolve(%q) = %q, %v; want an error naming the revision", rev, got, err)
		}
	}
}

// TestBisect drives git bisect over eight commits whose fourth (c4) brings the regression, with c2
// skipped, as mage bisect does, and checks git's answer and that the checkout comes back.
func TestBisect(t *testing.T) {
	ctx := context.Background()
	r, commits := newRepo(t, 8)
	if r.Bisecting(ctx) {
		t.Fatal("bisecting before the start")
	}
	if err := r.BisectStart(ctx, commits[7], commits[0]); err != nil {
		t.Fatal(err)
	}
	if !r.Bisecting(ctx) {
		t.Fatal("not bisecting after the start")
	}
	index := map[string]int{}
	for i, c := range commits {
		index[c] = i
	}
	var firstBad string
	for steps := 0; ; steps++ {
		if steps > 8 {
			t.Fatal("no answer after 8 steps")
		}
		head, err := r.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		v := Good
		switch i := index[head]; {
		case i == 2:
			v = Skip
		case i >= 4:
			v = Bad
		}
		out, done, bad, err := r.BisectMark(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			if bad == "" {
				t.Fatalf("done without a first bad commit:\n%s", out)
			}
			firstBad = bad
			break
		}
	}
	if firstBad != commits[4] {
		t.Errorf("first bad commit %s, want c4 %s", firstBad, commits[4])
	}
	if err := r.BisectReset(ctx); err != nil {
		t.Fatal(err)
	}
	if head, _ := r.Head(ctx); head != commits[7] || r.Bisecting(ctx) {
		t.Errorf("after the reset: HEAD %s (want %s), bisecting %v", head, commits[7], r.Bisecting(ctx))
	}
	branch, _ := r.git(ctx, "symbolic-ref", "--short", "HEAD")
	if branch != "main" {
		t.Errorf("after the reset the checkout is %q, want branch main", branch)
	}
}

func TestBisectOutput(t *testing.T) {
	for _, tt := range []struct {
		out      string
		done     bool
		firstBad string
	}{
		{"Bisecting: 3 revisions left to test after this (roughly 2 steps)\n[abc] c3", false, ""},
		{strings.Repeat("a", 40) + " is the first bad commit\ncommit " + strings.Repeat("a", 40), true, strings.Repeat("a", 40)},
		{"There are only 'skip'ped commits left to test.\nThe first bad commit could be any of:\n" + strings.Repeat("b", 40), true, ""},
		{"x " + strings.Repeat("c", 40) + " is the first bad commit", false, ""},
	} {
		if done, bad := bisectDone(tt.out), firstBadCommit(tt.out); done != tt.done || bad != tt.firstBad {
			t.Errorf("%q: done %v, first bad %q; want %v, %q", tt.out, done, bad, tt.done, tt.firstBad)
		}
	}
}
