// Package gitrepo asks git about a kernel source tree of the user's (its commit, whether it is dirty)
// and drives `git bisect` in it. Everything goes through the git command, as a person would run it,
// so the repository's own state (its bisect log, its worktrees) stays git's.
package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/run"
)

// Repo is a git work tree.
type Repo struct {
	Dir string
	Log io.Writer // receives the output of the commands that change the checkout; nil discards it
}

// ErrNotGit is returned for a folder that is not in a git work tree.
var ErrNotGit = errors.New("not a git work tree")

// git runs git in the work tree. Optional locks are off: asking about the tree never writes its
// index (as kernel's scripts/setlocalversion does too).
func (r Repo) git(ctx context.Context, args ...string) (string, error) {
	return run.Output(ctx, run.Cmd{Args: append([]string{"git", "-C", r.Dir}, args...), Env: []string{"GIT_OPTIONAL_LOCKS=0", "LC_ALL=C"}, Log: r.Log})
}

// Head is the commit checked out.
func (r Repo) Head(ctx context.Context) (string, error) {
	if err := host.Check(host.Git); err != nil {
		return "", err
	}
	if _, err := r.git(ctx, "rev-parse", "--is-inside-work-tree"); err != nil {
		return "", fmt.Errorf("%s: %w", r.Dir, ErrNotGit)
	}
	return r.git(ctx, "rev-parse", "--verify", "HEAD")
}

// Describe names the commit checked out as people do: the nearest tag, the commits since and an
// abbreviated hash (v6.12.117-1-3-gabc123), with -dirty when tracked files changed.
func (r Repo) Describe(ctx context.Context) (string, error) {
	if _, err := r.Head(ctx); err != nil {
		return "", err
	}
	return r.git(ctx, "describe", "--tags", "--always", "--dirty")
}

// Dirty says whether tracked files differ from the commit checked out (untracked files do not count:
// a kernel build does not see them unless a Makefile names them).
func (r Repo) Dirty(ctx context.Context) (bool, error) {
	out, err := r.git(ctx, "status", "--porcelain", "--untracked-files=no")
	return out != "", err
}

// revision accepts what a person names a commit by, but nothing git could read as an option.
var revision = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/@{}~^-]{0,199}$`)

// Resolve turns a revision (a tag, a branch, an abbreviated hash, HEAD~3) into its commit's full hash.
func (r Repo) Resolve(ctx context.Context, rev string) (string, error) {
	if !revision.MatchString(rev) {
		return "", fmt.Errorf("revision %q: name a commit, tag or branch (letters, digits and . _ / @ { } ~ ^ -, not starting with -)", rev)
	}
	commit, err := r.git(ctx, "rev-parse", "--verify", "--quiet", rev+"^{commit}")
	if err != nil {
		return "", fmt.Errorf("revision %q is not a commit in %s", rev, r.Dir)
	}
	return commit, nil
}

// Time is a commit's committer time: the build timestamp of a kernel built from it.
func (r Repo) Time(ctx context.Context, commit string) (time.Time, error) {
	out, err := r.git(ctx, "log", "-1", "--format=%ct", commit)
	if err != nil {
		return time.Time{}, err
	}
	secs, err := strconv.ParseInt(out, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time of %s: %q", commit, out)
	}
	return time.Unix(secs, 0).UTC(), nil
}

// Subject is a commit's one-line summary.
func (r Repo) Subject(ctx context.Context, commit string) (string, error) {
	return r.git(ctx, "log", "-1", "--format=%s", commit)
}

// Verdict is what a bisect step found of a commit.
type Verdict string

const (
	Good Verdict = "good"
	Bad  Verdict = "bad"
	Skip Verdict = "skip" // it could not be tested (it does not build)
)

// Bisecting says whether a bisect is in progress in the work tree.
func (r Repo) Bisecting(ctx context.Context) bool {
	_, err := r.git(ctx, "bisect", "log")
	return err == nil
}

// BisectStart starts a bisect between a good and a bad commit and checks out the first to test.
// git remembers the branch or commit checked out before, for BisectReset.
func (r Repo) BisectStart(ctx context.Context, bad, good string) error {
	_, err := r.git(ctx, "bisect", "start", bad, good, "--")
	return err
}

// BisectMark records a verdict on the commit checked out and checks out the next one. done is
// set when git has its answer: firstBad is the first bad commit, or empty when skipped commits
// leave it among several (git's message, in out, lists them).
func (r Repo) BisectMark(ctx context.Context, v Verdict) (out string, done bool, firstBad string, err error) {
	out, err = r.git(ctx, "bisect", string(v))
	// git exits 2 when only skipped commits are left: that is an answer, not a failure.
	if err != nil && !bisectDone(out) {
		return out, false, "", err
	}
	return out, bisectDone(out), firstBadCommit(out), nil
}

var firstBadLine = regexp.MustCompile(`(?m)^([0-9a-f]{40}) is the first bad commit$`)

func firstBadCommit(out string) string {
	if m := firstBadLine.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

func bisectDone(out string) bool {
	return firstBadCommit(out) != "" || strings.Contains(out, "only 'skip'ped commits left to test")
}

// BisectReset ends a bisect and checks out what was checked out before it started.
func (r Repo) BisectReset(ctx context.Context) error {
	_, err := r.git(ctx, "bisect", "reset")
	return err
}
