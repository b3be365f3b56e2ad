// Package bisect finds the commit of a git tree that brought a failure, with git bisect: each step
// builds the commit checked out and checks what was built, with stages the caller gives (a commit
// that does not build is skipped, one whose check fails is bad). A bisect keeps its verdicts in a
// folder of its own (steps.json, each step's log, bisect.json at the end), so that running it again
// after an interruption goes on where it stopped without building again. Limits: the tree must have
// no changes not committed and no bisect of the user's going on; its checkout is put back however a
// run ends.
package bisect

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/gitrepo"
)

// Step is one commit tested.
type Step struct {
	Commit  string          `json:"commit"`
	Subject string          `json:"subject"`
	Verdict gitrepo.Verdict `json:"verdict"`
	Reason  string          `json:"reason,omitempty"` // why it was skipped or bad
	Build   time.Duration   `json:"build_ns"`
	Check   time.Duration   `json:"check_ns,omitempty"`
	Log     string          `json:"log"` // the step's build and check output
}

// Result is what a bisect found.
type Result struct {
	FirstBad string // empty when skipped commits leave several candidates
	Subject  string // FirstBad's
	Steps    []Step // in the order git asked for them, those known from an earlier run included
	Builds   int    // kernels this run built (earlier runs' verdicts are not built again)
	Dir      string // the bisect's folder: steps.json and each step's log
}

// Stages are what a step does to the commit checked out, each writing its output to the step's log:
// build it, then check what was built. A failed build makes the commit skipped, a failed check bad.
type Stages struct {
	Build func(ctx context.Context, log io.Writer) error
	Check func(ctx context.Context, log io.Writer) error
}

// Bisect is one bisect of a tree between two commits with one check: its folder and the verdicts
// known so far.
type Bisect struct {
	repo      gitrepo.Repo
	good, bad string // full commit ids
	dir       string // steps.json, <commit>.log, bisect.json, and what the stages put there
	known     map[string]Step
}

// Open checks that repo can be bisected between the revisions goodRev and badRev, and reads the
// verdicts an earlier run of the same bisect left. Its folder is under root, named by the tree, the
// two commits and check, which names what decides a verdict (a script's digest, a test filter).
func Open(ctx context.Context, repo gitrepo.Repo, goodRev, badRev, root, check string) (*Bisect, error) {
	good, bad, err := resolve(ctx, repo, goodRev, badRev)
	if err != nil {
		return nil, err
	}
	b := &Bisect{repo: repo, good: good, bad: bad, known: map[string]Step{},
		dir: filepath.Join(root, digest.JSON([]string{repo.Dir, good, bad, check})[:16])}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return nil, err
	}
	var steps []Step
	if err := files.ReadJSON(b.stepsFile(), &steps); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("bisect: %s: %w (remove it to start over)", b.stepsFile(), err)
	}
	for _, s := range steps {
		b.known[s.Commit] = s
	}
	return b, nil
}

// resolve turns the two revisions into commits, and refuses a tree whose checkout a bisect must not
// move: one with changes not committed, or with a bisect of the user's going on.
func resolve(ctx context.Context, repo gitrepo.Repo, goodRev, badRev string) (good, bad string, err error) {
	if _, err := repo.Head(ctx); err != nil {
		return "", "", fmt.Errorf("bisect: kernel.tree: %w", err)
	}
	if good, err = repo.Resolve(ctx, goodRev); err != nil {
		return "", "", fmt.Errorf("bisect -good: %w", err)
	}
	if bad, err = repo.Resolve(ctx, badRev); err != nil {
		return "", "", fmt.Errorf("bisect -bad: %w", err)
	}
	if dirty, err := repo.Dirty(ctx); err != nil {
		return "", "", err
	} else if dirty {
		return "", "", fmt.Errorf("bisect: %s has changes not committed; commit or stash them first (git bisect checks out other commits)", repo.Dir)
	}
	if repo.Bisecting(ctx) {
		return "", "", fmt.Errorf("bisect: a git bisect is already going on in %s; finish it, or end it with `git bisect reset`", repo.Dir)
	}
	return good, bad, nil
}

// Dir is the bisect's folder.
func (b *Bisect) Dir() string { return b.dir }

func (b *Bisect) stepsFile() string { return filepath.Join(b.dir, "steps.json") }

// Run bisects with stages, a line per step to w, until git names the first bad commit. The tree's
// checkout is put back when it ends, however it ends; the verdicts stay in the bisect's folder.
func (b *Bisect) Run(ctx context.Context, stages Stages, w io.Writer) (Result, error) {
	res := Result{Dir: b.dir}
	fmt.Fprintf(w, "bisect %s: good %s, bad %s; %d verdicts known from before; logs: %s\n", b.repo.Dir, b.good[:12], b.bad[:12], len(b.known), b.dir)
	if err := b.repo.BisectStart(ctx, b.bad, b.good); err != nil {
		return res, err
	}
	defer func() {
		if err := b.repo.BisectReset(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(w, "bisect: could not put %s's checkout back (`git bisect reset` there): %v\n", b.repo.Dir, err)
		}
	}()
	for {
		step, built, err := b.step(ctx, stages)
		if built {
			res.Builds++
		}
		if err != nil {
			if ctx.Err() != nil {
				return res, fmt.Errorf("bisect interrupted after %d steps; run the same command to go on from there (verdicts in %s): %w", len(res.Steps), b.dir, err)
			}
			return res, err
		}
		res.Steps = append(res.Steps, step)
		fmt.Fprintf(w, "  %2d  %s  %-4s  build %-8s check %-8s %s%s\n", len(res.Steps), step.Commit[:12], step.Verdict,
			step.Build.Round(time.Second), step.Check.Round(time.Second), step.Subject, step.reason())
		out, done, firstBad, err := b.repo.BisectMark(ctx, step.Verdict)
		if err != nil {
			return res, err
		}
		if done {
			return b.finish(ctx, res, firstBad, out, w)
		}
	}
}

// step tests the commit checked out, or takes its verdict from an earlier run; built says whether it
// ran the stages.
func (b *Bisect) step(ctx context.Context, stages Stages) (s Step, built bool, err error) {
	head, err := b.repo.Head(ctx)
	if err != nil {
		return Step{}, false, err
	}
	if s, ok := b.known[head]; ok {
		return s, false, nil
	}
	s = Step{Commit: head, Log: filepath.Join(b.dir, head[:12]+".log")}
	s.Subject, _ = b.repo.Subject(ctx, head)
	if err := s.test(ctx, stages); err != nil {
		return s, true, err
	}
	b.known[head] = s
	steps := make([]Step, 0, len(b.known))
	for _, k := range b.known {
		steps = append(steps, k)
	}
	return s, true, files.WriteJSON(b.stepsFile(), steps)
}

// test runs the stages on the commit checked out, their output to the step's log, and gives the
// step its verdict. An error is returned only when the bisect cannot go on (Ctrl-C, a file that
// cannot be written); a failed build or check is a verdict.
func (s *Step) test(ctx context.Context, stages Stages) error {
	log, err := os.Create(s.Log)
	if err != nil {
		return err
	}
	defer log.Close()
	start := time.Now()
	err = stages.Build(ctx, log)
	s.Build = time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		fmt.Fprintf(log, "\nbuild failed: %v\n", err)
		s.Verdict, s.Reason = gitrepo.Skip, "does not build"
		return nil
	}
	start = time.Now()
	err = stages.Check(ctx, log)
	s.Check = time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.Verdict = gitrepo.Good
	if err != nil {
		fmt.Fprintf(log, "\ncheck failed: %v\n", err)
		line, _, _ := strings.Cut(err.Error(), "\n")
		s.Verdict, s.Reason = gitrepo.Bad, line
	}
	return nil
}

// reason is the step's reason for its line, in parentheses; "" when it has none.
func (s Step) reason() string {
	if s.Reason == "" {
		return ""
	}
	return " (" + s.Reason + ")"
}

// finish reports the first bad commit and writes the bisect's summary.
func (b *Bisect) finish(ctx context.Context, res Result, firstBad, gitSays string, w io.Writer) (Result, error) {
	if firstBad == "" {
		return res, fmt.Errorf("bisect: commits that do not build hide the first bad one; git says:\n%s", gitSays)
	}
	res.FirstBad = firstBad
	res.Subject, _ = b.repo.Subject(ctx, firstBad)
	fmt.Fprintf(w, "first bad commit: %s %s\n  %d steps, %d built in this run; logs: %s\n", firstBad, res.Subject, len(res.Steps), res.Builds, b.dir)
	return res, files.WriteJSON(filepath.Join(b.dir, "bisect.json"), res)
}
