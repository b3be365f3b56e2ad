package release

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
)

// The GitHub workflows are release tooling too: these tests hold them to actionlint (shellcheck runs
// when it is installed, as .ci/run installs it) and to the project's supply-chain rules.

var workflowDir = filepath.Join("..", "..", ".github", "workflows")

func TestWorkflowsLint(t *testing.T) {
	l, err := actionlint.NewLinter(&bytes.Buffer{}, &actionlint.LinterOptions{WorkingDir: filepath.Join("..", "..")})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.LintRepository(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Errorf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind)
	}
}

// writeScopes is every permission a job may write with; jobs not listed may only read.
var writeScopes = map[string][]string{
	"bump.yml/bump":       {"actions", "contents", "pull-requests"},
	"release.yml/publish": {"contents", "packages"}, // the release, and the images pushed to ghcr.io,
}

var (
	pinned      = regexp.MustCompile(`^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$`)
	usesComment = regexp.MustCompile(`uses:\s*\S+@[0-9a-f]{40}\s+#\s*v\d`)
)

// workflowFlag is bumpPR's -workflow= flag in a run: step.
var workflowFlag = regexp.MustCompile(`mage bumpPR\b[^\n]*-workflow=([\w.-]+)`)

func TestWorkflowsPolicy(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(workflowDir, "*.yml"))
	if len(files) < 3 {
		t.Fatalf("workflows: %v, want ci.yml, release.yml and bump.yml at least", files)
	}
	dispatchable := map[string]bool{}
	var bumpTarget string
	for _, path := range files {
		name := filepath.Base(path)
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		wf, errs := actionlint.Parse(src)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", name, errs[0])
		}
		// No default token rights: each job asks for what it needs.
		if wf.Permissions == nil || wf.Permissions.All != nil || len(wf.Permissions.Scopes) != 0 {
			t.Errorf("%s: want `permissions: {}` at the top, each job naming its own", name)
		}
		for _, ev := range wf.On {
			if ev.EventName() == "workflow_dispatch" {
				dispatchable[name] = true
			}
		}
		// Third-party code runs only at a reviewed commit, with the version it was in a comment.
		for _, line := range strings.Split(string(src), "\n") {
			if strings.Contains(line, "uses:") && !strings.Contains(line, "uses: ./") && !usesComment.MatchString(line) {
				t.Errorf("%s: %q: pin to a full commit SHA with `# vX.Y.Z` after it", name, strings.TrimSpace(line))
			}
		}
		var ids []string
		for id := range wf.Jobs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			job := wf.Jobs[id]
			key := name + "/" + id
			if job.Permissions == nil || job.Permissions.All != nil {
				t.Errorf("%s: no `permissions:` scopes of its own", key)
				continue
			}
			var writes []string
			for scope, p := range job.Permissions.Scopes {
				if p.Value.Value == "write" {
					writes = append(writes, scope)
				}
			}
			sort.Strings(writes)
			if strings.Join(writes, ",") != strings.Join(writeScopes[key], ",") {
				t.Errorf("%s writes %v, want %v", key, writes, writeScopes[key])
			}
			if job.TimeoutMinutes == nil {
				t.Errorf("%s: no timeout-minutes (the default is six hours)", key)
			}
			for _, st := range job.Steps {
				if ex, ok := st.Exec.(*actionlint.ExecAction); ok && !strings.HasPrefix(ex.Uses.Value, "./") && !pinned.MatchString(ex.Uses.Value) {
					t.Errorf("%s: uses %s: not pinned to a full commit SHA", key, ex.Uses.Value)
				}
				if run, ok := st.Exec.(*actionlint.ExecRun); ok && run.Run != nil && strings.Contains(run.Run.Value, "mage bumpPR") {
					if m := workflowFlag.FindStringSubmatch(run.Run.Value); m != nil {
						bumpTarget = m[1]
					}
				}
			}
		}
	}
	for k := range writeScopes {
		if _, err := os.Stat(filepath.Join(workflowDir, strings.Split(k, "/")[0])); err != nil {
			t.Errorf("write permission listed for %s, which does not exist", k)
		}
	}
	// bumpPR starts CI on its branch by a workflow_dispatch event.
	if bumpTarget == "" || !dispatchable[bumpTarget] {
		t.Errorf("bump.yml dispatches %q, which must exist and accept workflow_dispatch", bumpTarget)
	}
}
