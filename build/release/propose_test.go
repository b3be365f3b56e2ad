package release

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestBlobID(t *testing.T) {
	// Values from `git hash-object --stdin`.
	for data, want := range map[string]string{
		"":      "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
		"hello": "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0",
	} {
		if got := BlobID([]byte(data)); got != want {
			t.Errorf("BlobID(%q) = %s, want %s", data, got, want)
		}
	}
}

const oldLock = "# pin\nversion = \"6.12.117\"\nsha256 = \"\"\nreleased = \"\"\n"

func bumpChange(version string) Change {
	return Change{Base: "main", Branch: "bump/linux-" + version, Prefix: "bump/linux-",
		Title: "Bump Linux to " + version, Body: "linux 6.12.117 -> " + version, CommitMessage: "Bump Linux to " + version,
		Files: map[string][]byte{"kernel.lock": []byte("# pin\nversion = \"" + version + "\"\nsha256 = \"ab\"\nreleased = \"2026-11-20\"\n")}, Workflow: "ci.yml"}
}

func TestPropose(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares the repository; main already holds kernel.lock and README.md.
		setup      func(r *fakeRepo)
		change     Change
		wantErr    string
		wantOpen   []string // open pull requests afterwards
		wantClosed []int
		wantWrites int
		declined   bool
	}{
		{
			name:     "first proposal: branch, pull request, one CI dispatch",
			change:   bumpChange("6.12.121"),
			wantOpen: []string{"#1 bump/linux-6.12.121"}, wantWrites: 5, // tree, commit, ref, pull request, dispatch
		},
		{
			name: "an older bump is superseded; a fork's branch of the same kind and other work stay",
			setup: func(r *fakeRepo) {
				r.refs["bump/linux-6.12.118"] = r.commitFiles(r.refs["main"], "Bump Linux to 6.12.118", map[string]string{"kernel.lock": "version = \"6.12.118\""})
				r.addPull("bump/linux-6.12.118", "o/r", "main", "Bump Linux to 6.12.118", "open")
				r.addPull("bump/linux-6.12.119", "someone/r", "main", "fork", "open")
				r.addPull("feature/x", "o/r", "main", "feature", "open")
			},
			change:     bumpChange("6.12.121"),
			wantOpen:   []string{"#2 bump/linux-6.12.119", "#3 feature/x", "#4 bump/linux-6.12.121"},
			wantClosed: []int{1},
			wantWrites: 5 + 3, // + comment, close, delete branch
		},
		{
			name: "main moved on: the same pull request gets the change rebased, CI again",
			setup: func(r *fakeRepo) {
				c := bumpChange("6.12.121")
				r.refs[c.Branch] = r.commitFiles(r.refs["main"], c.CommitMessage, map[string]string{"kernel.lock": string(c.Files["kernel.lock"])})
				r.runs[r.refs[c.Branch]] = 1
				pr := r.addPull(c.Branch, "o/r", "main", c.Title, "open")
				pr.Body = c.Body
				r.refs["main"] = r.commitFiles(r.refs["main"], "unrelated", map[string]string{"README.md": "new"})
			},
			change:     bumpChange("6.12.121"),
			wantOpen:   []string{"#1 bump/linux-6.12.121"},
			wantWrites: 4, // tree, commit, forced ref, dispatch
		},
		{
			name: "a branch a person pushed to is left alone",
			setup: func(r *fakeRepo) {
				c := bumpChange("6.12.121")
				r.refs[c.Branch] = r.commitFiles(r.refs["main"], "fix the config for 6.12.121", map[string]string{"kconfig/x.config": "y"})
				r.addPull(c.Branch, "o/r", "main", c.Title, "open")
			},
			change:   bumpChange("6.12.121"),
			wantErr:  "did not make",
			wantOpen: []string{"#1 bump/linux-6.12.121"},
		},
		{
			name: "a pull request closed without merging is not reopened",
			setup: func(r *fakeRepo) {
				c := bumpChange("6.12.121")
				r.refs[c.Branch] = r.commitFiles(r.refs["main"], c.CommitMessage, map[string]string{"kernel.lock": "x"})
				r.addPull(c.Branch, "o/r", "main", c.Title, "closed")
			},
			change:   bumpChange("6.12.121"),
			declined: true,
		},
		{
			name:    "a branch outside the prefix is refused",
			change:  func() Change { c := bumpChange("6.12.121"); c.Prefix = "renovate/"; return c }(),
			wantErr: "prefix",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeGitHub(t)
			r := f.repo
			r.refs["main"] = r.commitFiles("", "initial", map[string]string{"kernel.lock": oldLock, "README.md": "readme"})
			if tt.setup != nil {
				tt.setup(r)
			}
			mainBefore := r.refs["main"]
			p := f.client(t, io.Discard)
			res, err := p.Propose(context.Background(), tt.change)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := r.open(); !slices.Equal(got, tt.wantOpen) {
				t.Errorf("open pull requests %q, want %q", got, tt.wantOpen)
			}
			if !slices.Equal(res.Closed, tt.wantClosed) {
				t.Errorf("closed %v, want %v", res.Closed, tt.wantClosed)
			}
			if tt.declined != (res.Declined != "") || (tt.declined && res.Writes != 0) {
				t.Errorf("declined %q after %d writes, want declined=%v and no writes", res.Declined, res.Writes, tt.declined)
			}
			if r.refs["main"] != mainBefore {
				t.Error("main moved")
			}
			if tt.wantErr != "" || tt.declined {
				return
			}
			if res.Writes != tt.wantWrites {
				t.Errorf("%d writes, want %d", res.Writes, tt.wantWrites)
			}
			// The branch is one commit on main holding the change and keeping the rest.
			head := r.commits[r.refs[tt.change.Branch]]
			tree := r.trees[head.Tree]
			if !slices.Equal(head.Parents, []string{r.refs["main"]}) || string(r.blobs[tree["kernel.lock"].SHA]) != string(tt.change.Files["kernel.lock"]) ||
				tree["README.md"] != r.trees[r.commits[r.refs["main"]].Tree]["README.md"] {
				t.Errorf("branch head %+v holds %v", head, tree)
			}
			for _, n := range res.Closed {
				if cs := r.comments[n]; len(cs) != 1 || !strings.Contains(cs[0], "Superseded by #") {
					t.Errorf("comments on #%d: %q", n, cs)
				}
				if _, ok := r.refs[r.pulls[n-1].Head]; ok {
					t.Errorf("branch of superseded #%d kept", n)
				}
			}
			if !res.Dispatched || r.runs[r.refs[tt.change.Branch]] != 1 {
				t.Errorf("dispatched=%v, runs of the head %d, want one", res.Dispatched, r.runs[r.refs[tt.change.Branch]])
			}
			// A rerun with the same change converges: nothing written.
			again, err := p.Propose(context.Background(), tt.change)
			if err != nil {
				t.Fatal(err)
			}
			if again.Writes != 0 || again.Number != res.Number || again.Pushed || again.Opened || again.Dispatched {
				t.Errorf("rerun: %+v, want the same pull request and no writes", again)
			}
			// Reads: the branch's pull requests, base and head refs, head commit and tree, the open
			// pull requests, the head's CI runs.
			if again.Calls > 7 {
				t.Errorf("rerun made %d API calls, want at most 7", again.Calls)
			}
		})
	}
}

// A run that fails after pushing (GitHub erroring on the pull request) converges on the next run: the
// pushed branch is reused, one pull request is opened, CI is dispatched once.
func TestProposeResumesAfterFailure(t *testing.T) {
	f := newFakeGitHub(t)
	r := f.repo
	r.refs["main"] = r.commitFiles("", "initial", map[string]string{"kernel.lock": oldLock})
	f.faults["POST /api/v3/repos/o/r/pulls"] = []fault{{status: 502}, {status: 502}, {status: 502}}
	p := f.client(t, io.Discard)
	c := bumpChange("6.12.121")
	if _, err := p.Propose(context.Background(), c); err == nil || !strings.Contains(err.Error(), "open the pull request") {
		t.Fatalf("err = %v, want the pull request step to fail", err)
	}
	res, err := p.Propose(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Opened || res.Pushed || !res.Dispatched || len(r.open()) != 1 || len(r.dispatch) != 1 {
		t.Errorf("second run %+v; open %q; dispatches %q", res, r.open(), r.dispatch)
	}
}

func TestSupersedeAll(t *testing.T) {
	f := newFakeGitHub(t)
	r := f.repo
	r.refs["main"] = r.commitFiles("", "initial", map[string]string{"kernel.lock": oldLock})
	r.refs["bump/linux-6.12.118"] = r.refs["main"]
	r.addPull("bump/linux-6.12.118", "o/r", "main", "old", "open")
	r.addPull("docs", "o/r", "main", "docs", "open")
	p := f.client(t, io.Discard)
	var n APICalls
	closed, err := p.Supersede(context.Background(), &n, "bump/linux-", "", "main already pins 6.12.118")
	if err != nil || !slices.Equal(closed, []int{1}) || !slices.Equal(r.open(), []string{"#2 docs"}) {
		t.Fatalf("closed %v, err %v, open %q", closed, err, r.open())
	}
	if _, err := p.Supersede(context.Background(), &n, "", "", "x"); err == nil {
		t.Error("an empty prefix was accepted")
	}
}
