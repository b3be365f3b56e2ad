package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/gitrepo"
	"github.com/simple-uml/simple-uml/build/kunit"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// BisectRequest is what `mage bisect` looks for between two commits of kernel.tree.
type BisectRequest struct {
	Good, Bad string // revisions: the last known good, the first known bad
	// The check of a commit: Script runs in the booted guest after mage test's own checks (a commit
	// is bad when any fails, or the guest does not come up); KUnit boots the kernel with that filter
	// (bad when a selected test fails). Neither: mage test's own checks.
	Script, KUnit string
}

// BisectStep is one commit tested.
type BisectStep struct {
	Commit  string          `json:"commit"`
	Subject string          `json:"subject"`
	Verdict gitrepo.Verdict `json:"verdict"`
	Reason  string          `json:"reason,omitempty"` // why it was skipped or bad
	Build   time.Duration   `json:"build_ns"`
	Check   time.Duration   `json:"check_ns,omitempty"`
	Log     string          `json:"log"` // the step's build and check output
}

// BisectResult is what Bisect found.
type BisectResult struct {
	FirstBad string       // empty when skipped commits leave several candidates
	Subject  string       // FirstBad's
	Steps    []BisectStep // in the order git asked for them, those known from an earlier run included
	Builds   int          // kernels this run built (earlier runs' verdicts are not built again)
	Dir      string       // the bisect's folder: steps.json and each step's log
}

// bisectRun is one bisect's state: its tree, its check, and the verdicts known so far.
type bisectRun struct {
	cfg    config.Config
	req    BisectRequest
	repo   gitrepo.Repo
	dir    string // <cache>/bisect/<key>: steps.json, <commit>.log, dist/
	known  map[string]BisectStep
	stages bisectStages
	w      io.Writer
}

// bisectStages are what a step does to a commit: build the tree into cfg's dist, then check what
// was built. A failed build makes the commit skipped, a failed check bad.
type bisectStages struct {
	build func(ctx context.Context, cfg config.Config, log io.Writer) error
	check func(b *bisectRun, ctx context.Context, cfg config.Config, log io.Writer) error
}

// realBisectStages build with `mage kernel` and check with `mage kunit` or `mage test`.
var realBisectStages = bisectStages{
	build: func(ctx context.Context, cfg config.Config, log io.Writer) error {
		_, err := Kernel(ctx, cfg, log)
		return err
	},
	check: (*bisectRun).check,
}

// Bisect finds the commit of kernel.tree between req.Good and req.Bad that brought a failure, with
// git bisect: each step is an incremental build of the tree (in its build folder, the one `mage
// kernel` uses) and a boot running the check; a commit that does not build is skipped. The tree's
// checkout is put back as it was when Bisect ends, however it ends; the verdicts are kept, so that
// running it again after Ctrl-C goes on where it stopped without building again.
func Bisect(ctx context.Context, cfg config.Config, req BisectRequest, w io.Writer) (BisectResult, error) {
	return bisectWith(ctx, cfg, req, realBisectStages, w)
}

// bisectWith is Bisect with the stages a step runs.
func bisectWith(ctx context.Context, cfg config.Config, req BisectRequest, stages bisectStages, w io.Writer) (BisectResult, error) {
	ctx, run, err := startRun(ctx, cfg, "mage bisect", w)
	if err != nil {
		return BisectResult{}, err
	}
	defer run.end()
	b, good, bad, err := newBisect(ctx, cfg, req, w)
	if err != nil {
		return BisectResult{}, err
	}
	b.stages = stages
	res := BisectResult{Dir: b.dir}
	fmt.Fprintf(w, "bisect %s: good %s, bad %s; %d verdicts known from before; logs: %s\n", b.repo.Dir, good[:12], bad[:12], len(b.known), b.dir)
	if err := b.repo.BisectStart(ctx, bad, good); err != nil {
		return res, err
	}
	defer func() {
		if err := b.repo.BisectReset(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(w, "bisect: could not put %s's checkout back (`git bisect reset` there): %v\n", b.repo.Dir, err)
		}
	}()
	for {
		step, built, err := b.step(ctx)
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
			step.Build.Round(time.Second), step.Check.Round(time.Second), step.Subject, reason(step))
		out, done, firstBad, err := b.repo.BisectMark(ctx, step.Verdict)
		if err != nil {
			return res, err
		}
		if done {
			return b.finish(ctx, res, firstBad, out)
		}
	}
}

// newBisect checks the request and the tree, and reads the verdicts an earlier run of the same
// bisect left.
func newBisect(ctx context.Context, cfg config.Config, req BisectRequest, w io.Writer) (*bisectRun, string, string, error) {
	if cfg.Kernel.Tree == "" {
		return nil, "", "", errors.New("bisect needs a kernel source tree: set kernel.tree (SUML_KERNEL_TREE) to your git work tree")
	}
	if req.Good == "" || req.Bad == "" {
		return nil, "", "", errors.New("bisect: name the last good commit and the first bad one (-good=<commit> -bad=<commit>)")
	}
	if req.Script != "" && req.KUnit != "" {
		return nil, "", "", errors.New("bisect: give a -script or a -kunit filter, not both")
	}
	repo := gitrepo.Repo{Dir: cfg.Kernel.Tree, Log: io.Discard}
	if _, err := repo.Head(ctx); err != nil {
		return nil, "", "", fmt.Errorf("bisect: kernel.tree: %w", err)
	}
	good, err := repo.Resolve(ctx, req.Good)
	if err != nil {
		return nil, "", "", fmt.Errorf("bisect -good: %w", err)
	}
	bad, err := repo.Resolve(ctx, req.Bad)
	if err != nil {
		return nil, "", "", fmt.Errorf("bisect -bad: %w", err)
	}
	if dirty, err := repo.Dirty(ctx); err != nil {
		return nil, "", "", err
	} else if dirty {
		return nil, "", "", fmt.Errorf("bisect: %s has changes not committed; commit or stash them first (git bisect checks out other commits)", repo.Dir)
	}
	if repo.Bisecting(ctx) {
		return nil, "", "", fmt.Errorf("bisect: a git bisect is already going on in %s; finish it, or end it with `git bisect reset`", repo.Dir)
	}
	check, err := bisectCheckKey(cfg, req)
	if err != nil {
		return nil, "", "", err
	}
	dir := filepath.Join(cfg.Paths.Cache, "bisect", digest.JSON([]string{repo.Dir, good, bad, check})[:16])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", "", err
	}
	b := &bisectRun{cfg: cfg, req: req, repo: repo, dir: dir, known: map[string]BisectStep{}, w: w}
	var steps []BisectStep
	if err := files.ReadJSON(b.stepsFile(), &steps); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, "", "", fmt.Errorf("bisect: %s: %w (remove it to start over)", b.stepsFile(), err)
	}
	for _, s := range steps {
		b.known[s.Commit] = s
	}
	return b, good, bad, nil
}

// bisectCheckKey names the check, for the bisect's folder: the script's content, the KUnit filter,
// or mage test's own checks of the recipe's image, which must be in dist/ before any build.
func bisectCheckKey(cfg config.Config, req BisectRequest) (string, error) {
	if req.KUnit != "" {
		if !kunit.ValidFilter(req.KUnit) {
			return "", fmt.Errorf("bisect -kunit %q: use suite and test names with * ? [ ] globs", req.KUnit)
		}
		return "kunit:" + req.KUnit, nil
	}
	image, _, record := manifest.RootfsFiles(cfg.Paths.Dist, cfg.Boot.Recipe)
	for _, p := range []string{image, record} {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("bisect boots %s's image: build it first with `go tool mage rootfs`: %w", cfg.Boot.Recipe, err)
		}
	}
	if req.Script == "" {
		return "test:" + cfg.Boot.Recipe, nil
	}
	sum, err := digest.File(req.Script)
	if err != nil {
		return "", fmt.Errorf("bisect -script: %w", err)
	}
	return "script:" + cfg.Boot.Recipe + ":" + sum, nil
}

func (b *bisectRun) stepsFile() string { return filepath.Join(b.dir, "steps.json") }

// step tests the commit checked out, or takes its verdict from an earlier run.
func (b *bisectRun) step(ctx context.Context) (BisectStep, bool, error) {
	head, err := b.repo.Head(ctx)
	if err != nil {
		return BisectStep{}, false, err
	}
	if s, ok := b.known[head]; ok {
		return s, false, nil
	}
	s := BisectStep{Commit: head, Log: filepath.Join(b.dir, head[:12]+".log")}
	s.Subject, _ = b.repo.Subject(ctx, head)
	if err := b.test(ctx, &s); err != nil {
		return s, true, err
	}
	b.known[head] = s
	steps := make([]BisectStep, 0, len(b.known))
	for _, k := range b.known {
		steps = append(steps, k)
	}
	return s, true, files.WriteJSON(b.stepsFile(), steps)
}

// test builds the commit checked out into the bisect's own dist/ and runs the check on it; the
// output of both goes to the step's log. An error is returned only when the bisect cannot go on
// (Ctrl-C, a file that cannot be written); a failed build or check is a verdict.
func (b *bisectRun) test(ctx context.Context, s *BisectStep) error {
	log, err := os.Create(s.Log)
	if err != nil {
		return err
	}
	defer log.Close()
	cfg := b.cfg
	cfg.Paths.Dist = filepath.Join(b.dir, "dist")
	start := time.Now()
	err = b.stages.build(ctx, cfg, log)
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
	err = b.stages.check(b, ctx, cfg, log)
	s.Check = time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	s.Verdict = gitrepo.Good
	if err != nil {
		fmt.Fprintf(log, "\ncheck failed: %v\n", err)
		s.Verdict, s.Reason = gitrepo.Bad, firstLine(err.Error())
	}
	return nil
}

// check runs the bisect's check on the kernel in cfg's dist.
func (b *bisectRun) check(ctx context.Context, cfg config.Config, log io.Writer) error {
	if b.req.KUnit != "" {
		cfg.Kernel.KunitConfig = nil // built in by the step's build already
		_, err := Kunit(ctx, cfg, b.req.KUnit, log)
		return err
	}
	// The image to boot, from the real dist/ into the bisect's (a hard link: it is only read).
	image, _, record := manifest.RootfsFiles(b.cfg.Paths.Dist, cfg.Boot.Recipe)
	for _, p := range []string{image, record} {
		if err := files.LinkOrCopy(p, filepath.Join(cfg.Paths.Dist, filepath.Base(p))); err != nil {
			return err
		}
	}
	cfg.Test.Scripts = nil
	if b.req.Script != "" {
		cfg.Test.Scripts = []string{b.req.Script}
	}
	_, err := GuestTest(ctx, cfg, log)
	return err
}

// finish reports the first bad commit and writes the bisect's summary.
func (b *bisectRun) finish(ctx context.Context, res BisectResult, firstBad, gitSays string) (BisectResult, error) {
	if firstBad == "" {
		return res, fmt.Errorf("bisect: commits that do not build hide the first bad one; git says:\n%s", gitSays)
	}
	res.FirstBad = firstBad
	res.Subject, _ = b.repo.Subject(ctx, firstBad)
	fmt.Fprintf(b.w, "first bad commit: %s %s\n  %d steps, %d built in this run; logs: %s\n", firstBad, res.Subject, len(res.Steps), res.Builds, b.dir)
	return res, files.WriteJSON(filepath.Join(b.dir, "bisect.json"), res)
}

func reason(s BisectStep) string {
	if s.Reason == "" {
		return ""
	}
	return " (" + s.Reason + ")"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
