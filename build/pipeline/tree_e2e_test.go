package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/bisect"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/gitrepo"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/ktap"
	"github.com/simple-uml/simple-uml/build/manifest"
)

// kernelRepo is the test's kernel git repository: Debian's linux-source imported as one commit, then
// small commits, one of which lowers vm.max_map_count (the regression the bisect check reads) and one
// of which does not build (the next one fixes it).
type kernelRepo struct {
	dir     string
	commits map[string]string // subject -> hash
}

var kernelRepoCommits = []struct {
	subject string
	file    string
	edit    func(string) string
}{
	{"docs: a first harmless change", "README", func(s string) string { return s + "\nsimple-uml test: one\n" }},
	{"docs: a second harmless change", "README", func(s string) string { return s + "simple-uml test: two\n" }},
	{"proc: a change that does not build", "fs/proc/version.c", func(s string) string { return s + "\n#error simple-uml test: this commit does not build\n" }},
	{"proc: build again", "fs/proc/version.c", func(s string) string {
		return strings.Replace(s, "\n#error simple-uml test: this commit does not build\n", "", 1)
	}},
	{"mm: lower the default max_map_count (the regression)", "mm/util.c", func(s string) string {
		return strings.Replace(s, "sysctl_max_map_count __read_mostly = DEFAULT_MAX_MAP_COUNT;", "sysctl_max_map_count __read_mostly = DEFAULT_MAX_MAP_COUNT - 1;", 1)
	}},
	{"docs: a harmless change after it", "README", func(s string) string { return s + "simple-uml test: three\n" }},
}

// newKernelRepo makes the repository in dir (which must not exist).
func newKernelRepo(t *testing.T, dir string) kernelRepo {
	t.Helper()
	tarball := "/usr/src/linux-source-6.12.tar.xz"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-xJf", tarball, "-C", dir, "--strip-components=1").CombinedOutput(); err != nil {
		t.Fatalf("unpack %s: %v\n%s", tarball, err, out)
	}
	r := kernelRepo{dir: dir, commits: map[string]string{}}
	r.git(t, "init", "-q", "-b", "main")
	// -f: Debian's .gitignore ignores everything at the top of the tree.
	r.git(t, "add", "-A", "-f")
	r.commit(t, "import linux-source-6.12")
	for _, c := range kernelRepoCommits {
		r.edit(t, c.file, c.edit)
		r.commit(t, c.subject)
	}
	return r
}

func (r kernelRepo) git(t *testing.T, args ...string) string {
	t.Helper()
	// No automatic gc: after the import it would repack the whole tree in the background, while
	// the test reads and builds it.
	cmd := exec.Command("git", append([]string{"-C", r.dir, "-c", "gc.auto=0"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=simple-uml test", "GIT_AUTHOR_EMAIL=test@example.invalid",
		"GIT_COMMITTER_NAME=simple-uml test", "GIT_COMMITTER_EMAIL=test@example.invalid",
		"GIT_AUTHOR_DATE=2026-11-01T00:00:00Z", "GIT_COMMITTER_DATE=2026-11-01T00:00:00Z")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (r kernelRepo) edit(t *testing.T, file string, edit func(string) string) {
	t.Helper()
	path := filepath.Join(r.dir, file)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	changed := edit(string(data))
	if changed == string(data) {
		t.Fatalf("the edit of %s changed nothing", file)
	}
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r kernelRepo) commit(t *testing.T, subject string) {
	t.Helper()
	r.git(t, "commit", "-q", "-a", "-m", subject)
	r.commits[subject] = r.git(t, "rev-parse", "HEAD")
}

// treeDigest hashes every file of a tree, .git included: path, mode, size, modification time and
// content.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v %d %d\n", path, info.Mode(), info.Size(), info.ModTime().UnixNano())
		if info.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(h, f)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestTreeEndToEnd is the kernel hacker's loop on a real tree: build it out of tree without changing
// a byte of it; bisect a regression between two commits with a check run in the guest, skipping the
// commit that does not build, in few incremental builds, resuming after Ctrl-C and putting the
// checkout back; run KUnit on a commit whose test fails. One cold build; every other is incremental.
func TestTreeEndToEnd(t *testing.T) {
	requireE2E(t)
	requireImageTools(t)
	ws, _, _ := e2ePair(t)
	work, repo := treeWork(t)
	dist := filepath.Join(work, "dist")
	os.MkdirAll(dist, 0o755)
	image, _, record := manifest.RootfsFiles(filepath.Join(ws, "dist"), "test")
	for _, p := range []string{image, record} {
		if err := files.LinkOrCopy(p, filepath.Join(dist, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	// The lean profile: a tree's first build is cold, and the lean one is the quicker.
	cfg := bootConfig(t, ws, map[string]string{"SUML_KERNEL_TREE": repo.dir, "SUML_DIST": dist, "SUML_CACHE": filepath.Join(work, "cache"), "SUML_KERNEL_PROFILE": "lean"})
	ctx := context.Background()
	main := repo.commits["docs: a harmless change after it"]

	// Building the tree writes nothing into it.
	before := treeDigest(t, repo.dir)
	start := time.Now()
	res, err := Kernel(ctx, cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	cold := time.Since(start)
	t.Logf("first build of the tree: %s", cold.Round(time.Second))
	if os.Getenv("SUML_E2E_TREE_WORK") != "" {
		cold = time.Hour // the build folder was kept: that first build was not cold
	}
	if after := treeDigest(t, repo.dir); after != before {
		t.Error("building the tree changed files in it")
	}
	if tr := res.Record.Tree; tr == nil || tr.Path != repo.dir || tr.Commit != main || tr.Dirty {
		t.Errorf("the record's tree: %+v, want %s at %s, clean", tr, repo.dir, main)
	}
	if !strings.HasPrefix(res.Record.Version, "6.12.") || res.Record.Source != "tree:"+repo.dir {
		t.Errorf("record version %q, source %q", res.Record.Version, res.Record.Source)
	}
	os.WriteFile(filepath.Join(repo.dir, "README"), []byte("changed\n"), 0o644)
	if src, err := kernel.Resolve(ctx, cfg, nil, io.Discard); err != nil || src.Tree == nil || !src.Tree.Dirty {
		t.Errorf("a changed README: source %+v, %v; want a dirty tree", src, err)
	}
	repo.git(t, "checkout", "-q", "--", "README")

	// Bisect, interrupted once its first step is done, then run again to the end.
	script := filepath.Join(work, "max-map-count.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n# vm.max_map_count keeps its default\ntest \"$(cat /proc/sys/vm/max_map_count)\" = 65530\n"), 0o755)
	req := BisectRequest{Good: repo.commits["import linux-source-6.12"], Bad: "main", Script: script}
	interrupted, cancel := context.WithCancel(ctx)
	go func() {
		defer cancel()
		for interrupted.Err() == nil {
			if matches, _ := filepath.Glob(filepath.Join(cfg.Paths.Cache, "bisect", "*", "steps.json")); len(matches) > 0 {
				time.Sleep(2 * time.Second) // into the second step's build
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	first, err := Bisect(interrupted, cfg, req, testLog(t))
	if err == nil || !strings.Contains(err.Error(), "interrupted") || len(first.Steps) != 1 {
		t.Fatalf("the interrupted bisect: %d steps, %v", len(first.Steps), err)
	}
	checkCheckout(t, repo, main)

	res2, err := Bisect(ctx, cfg, req, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := repo.commits["mm: lower the default max_map_count (the regression)"]; res2.FirstBad != want {
		t.Errorf("first bad commit %s %q, want %s", res2.FirstBad, res2.Subject, want)
	}
	if res2.Steps[0] != first.Steps[0] {
		t.Errorf("the first step was not taken from the interrupted run: %+v, then %+v", first.Steps[0], res2.Steps[0])
	}
	// n = 6 commits after the good one: ceil(log2(6)) + 1 = 4 builds at most, all incremental.
	builds := first.Builds + res2.Builds - 1 // the interrupted second build is done again
	if builds > 4 {
		t.Errorf("%d builds for 6 commits, want 4 at most", builds)
	}
	for _, s := range res2.Steps {
		t.Logf("step %s %-4s build %s check %s %s %s", s.Commit[:12], s.Verdict, s.Build.Round(time.Second), s.Check.Round(time.Second), s.Subject, s.Reason)
		if s.Build > cold/2 {
			t.Errorf("step %s took %s to build, more than half the cold build (%s): not incremental", s.Commit[:12], s.Build, cold)
		}
		want := gitrepo.Good
		switch s.Subject {
		case "proc: a change that does not build":
			want = gitrepo.Skip
		case "mm: lower the default max_map_count (the regression)", "docs: a harmless change after it":
			want = gitrepo.Bad
		}
		if s.Verdict != want {
			t.Errorf("step %q: %s, want %s", s.Subject, s.Verdict, want)
		}
	}
	if !slices.ContainsFunc(res2.Steps, func(s bisect.Step) bool { return s.Verdict == gitrepo.Skip }) {
		t.Log("git bisect did not ask for the commit that does not build")
	}
	checkCheckout(t, repo, main)

	// KUnit on a commit whose example test fails, with KUnit's own .kunitconfig (its own tests too),
	// as kunit.py --kunitconfig=lib/kunit: the kernel is built with it first; the reports name the
	// failing test, the run fails; the list tests (kconfig/) and KUnit's own pass.
	repo.git(t, "checkout", "-q", "-b", "kunit-fails")
	repo.edit(t, "lib/kunit/kunit-example-test.c", func(s string) string {
		return strings.Replace(s, "KUNIT_EXPECT_EQ(test, 1 + 1, 2);", "KUNIT_EXPECT_EQ(test, 1 + 1, 3);", 1)
	})
	repo.commit(t, "kunit: an example test that fails")
	defer repo.git(t, "checkout", "-q", "main")
	kunitCfg := cfg
	kunitCfg.Kernel.KunitConfig = []string{"lib/kunit"}
	start = time.Now()
	root, err := Kunit(ctx, kunitCfg, "", testLog(t))
	if err == nil {
		t.Fatal("kunit passed with a failing test")
	}
	t.Logf("build of the failing KUnit commit with lib/kunit/.kunitconfig and the KUnit run: %s", time.Since(start).Round(time.Second))
	if rec, err := manifest.ReadKernelRecord(dist); err != nil || rec.Tree.Commit != repo.commits["kunit: an example test that fails"] ||
		!slices.ContainsFunc(rec.Fragments, func(d manifest.Digest) bool { return strings.HasSuffix(d.File, "lib/kunit/.kunitconfig") }) {
		t.Errorf("the kernel KUnit ran was not built from the commit with the .kunitconfig: %+v, %v", rec, err)
	}
	failed := map[string]bool{}
	suites := map[string]bool{}
	root.Leaves(func(path string, l *ktap.Test) { failed[l.Name] = l.Status == ktap.Fail })
	for _, s := range root.Subtests {
		suites[s.Name] = true
	}
	if !failed["example_simple_test"] || failed["list_test_list_init"] {
		t.Errorf("tests %v: want example_simple_test failing, list_test_list_init passing", failed)
	}
	if !suites["kunit-try-catch-test"] {
		t.Errorf("suites %v: KUnit's own (lib/kunit/.kunitconfig) did not run", suites)
	}
	for name, f := range failed {
		if f && name != "example_simple_test" {
			t.Errorf("%s failed too", name)
		}
	}
	junit, err := os.ReadFile(filepath.Join(dist, "test-reports", "kunit.junit.xml"))
	if err != nil || !strings.Contains(string(junit), `name="example_simple_test"`) || !strings.Contains(string(junit), "<failure") {
		t.Errorf("the JUnit report does not name the failing test (%v)", err)
	}
}

// treeWork is the test's folder and kernel repository. With SUML_E2E_TREE_WORK (a developer's
// switch, never CI's) both are kept there between runs, so that the tree's build folder is too.
func treeWork(t *testing.T) (string, kernelRepo) {
	work := os.Getenv("SUML_E2E_TREE_WORK")
	if work == "" {
		work = t.TempDir()
		return work, newKernelRepo(t, filepath.Join(work, "linux"))
	}
	dir := filepath.Join(work, "linux")
	if _, err := os.Stat(dir); err != nil {
		return work, newKernelRepo(t, dir)
	}
	r := kernelRepo{dir: dir, commits: map[string]string{}}
	r.git(t, "checkout", "-q", "-f", "main")
	exec.Command("git", "-C", dir, "branch", "-q", "-D", "kunit-fails").Run() // left by an earlier run, or not
	for _, line := range strings.Split(r.git(t, "log", "--format=%H %s"), "\n") {
		hash, subject, _ := strings.Cut(line, " ")
		r.commits[subject] = hash
	}
	os.RemoveAll(filepath.Join(work, "cache", "bisect"))
	os.RemoveAll(filepath.Join(work, "dist"))
	return work, r
}

// checkCheckout: the tree is on branch main at commit, with no bisect going on.
func checkCheckout(t *testing.T, repo kernelRepo, commit string) {
	t.Helper()
	if head := repo.git(t, "rev-parse", "HEAD"); head != commit {
		t.Errorf("the checkout is at %s, want %s", head, commit)
	}
	if branch := repo.git(t, "symbolic-ref", "--short", "HEAD"); branch != "main" {
		t.Errorf("the checkout is on %q, want main", branch)
	}
	if (gitrepo.Repo{Dir: repo.dir}).Bisecting(context.Background()) {
		t.Error("a bisect is left going on")
	}
}
