package release

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Change is a set of files to propose as one pull request: one commit on top of the base branch.
type Change struct {
	Base          string            // the branch the pull request targets, e.g. "main"
	Branch        string            // the head branch of this change, e.g. "bump/linux-6.12.121"
	Prefix        string            // head branches of this kind; open pull requests from the others are superseded
	Title, Body   string            // the pull request's
	CommitMessage string            // the commit's; also how a branch this tool pushed is recognised
	Files         map[string][]byte // repository path -> new content
	// Workflow is a workflow file (ci.yml) to dispatch on Branch once its head has no run of it:
	// pushes and pull requests made with a job's GITHUB_TOKEN start no workflow runs, dispatches do.
	Workflow string
}

// Proposal says what Propose found and did.
type Proposal struct {
	Number     int    // the pull request's; 0 when none is open (Declined)
	URL        string // its web address
	Pushed     bool   // the branch got a new commit
	Opened     bool   // the pull request is new
	Dispatched bool   // Workflow was dispatched on the branch
	Declined   string // why nothing was proposed, when a person's decision stands in the way
	Closed     []int  // superseded pull requests this run closed
	APICalls
}

// Propose makes exactly one open pull request carry the change: it commits Files on top of Base to
// Branch (force-pushing only a branch whose head is this tool's own commit), opens or updates the pull
// request, and closes the other open pull requests from Prefix branches of this repository with a
// comment naming the new one. A rerun with the same change writes nothing. A pull request from Branch
// that a person closed without merging is respected: nothing is proposed.
func (p *GitHub) Propose(ctx context.Context, c Change) (*Proposal, error) {
	res := &Proposal{}
	if c.Base == "" || c.Branch == "" || !strings.HasPrefix(c.Branch, c.Prefix) || len(c.Files) == 0 {
		return res, fmt.Errorf("propose: need a base, a branch starting with the prefix %q and files (got base %q, branch %q, %d files)", c.Prefix, c.Base, c.Branch, len(c.Files))
	}
	prs, err := p.pullRequests(ctx, &res.APICalls, &github.PullRequestListOptions{State: "all", Head: p.Owner + ":" + c.Branch})
	if err != nil {
		return res, err
	}
	var open *github.PullRequest
	for _, pr := range prs {
		switch {
		case pr.GetState() == "open":
			open = pr
		case pr.MergedAt == nil && open == nil:
			res.Declined = fmt.Sprintf("pull request #%d from %s was closed without merging; not proposing it again (delete the branch %s to allow it)", pr.GetNumber(), c.Branch, c.Branch)
		}
	}
	if open == nil && res.Declined != "" {
		fmt.Fprintln(p.log(), res.Declined)
		return res, nil
	}
	res.Declined = ""
	head, err := p.pushChange(ctx, res, c)
	if err != nil {
		return res, err
	}
	if open == nil {
		err = p.call(ctx, &res.APICalls, true, "open the pull request", func() (*github.Response, error) {
			var resp *github.Response
			var err error
			open, resp, err = p.Client.PullRequests.Create(ctx, p.Owner, p.Repo, &github.NewPullRequest{
				Title: github.String(c.Title), Head: github.String(c.Branch), Base: github.String(c.Base),
				Body: github.String(c.Body), MaintainerCanModify: github.Bool(true)})
			return resp, err
		})
		if err != nil {
			return res, err
		}
		res.Opened = true
	} else if open.GetTitle() != c.Title || open.GetBody() != c.Body || open.GetBase().GetRef() != c.Base {
		edit := &github.PullRequest{Title: github.String(c.Title), Body: github.String(c.Body), Base: &github.PullRequestBranch{Ref: github.String(c.Base)}}
		err = p.call(ctx, &res.APICalls, true, fmt.Sprintf("update pull request #%d", open.GetNumber()), func() (*github.Response, error) {
			var resp *github.Response
			var err error
			open, resp, err = p.Client.PullRequests.Edit(ctx, p.Owner, p.Repo, open.GetNumber(), edit)
			return resp, err
		})
		if err != nil {
			return res, err
		}
	}
	res.Number, res.URL = open.GetNumber(), open.GetHTMLURL()
	verb := "is up to date"
	switch {
	case res.Opened:
		verb = "opened"
	case res.Pushed:
		verb = "updated"
	}
	fmt.Fprintf(p.log(), "pull request #%d %s: %s\n", res.Number, verb, res.URL)
	if res.Closed, err = p.Supersede(ctx, &res.APICalls, c.Prefix, c.Branch, fmt.Sprintf("Superseded by #%d (%s).", res.Number, c.Title)); err != nil {
		return res, err
	}
	if c.Workflow != "" {
		if res.Dispatched, err = p.dispatchOnce(ctx, &res.APICalls, c.Workflow, c.Branch, head); err != nil {
			return res, err
		}
	}
	return res, nil
}

// Supersede closes the open pull requests of this repository whose head branch starts with prefix
// (all but keep), each with the comment, and deletes their branches. It returns their numbers.
func (p *GitHub) Supersede(ctx context.Context, n *APICalls, prefix, keep, comment string) ([]int, error) {
	if prefix == "" {
		return nil, fmt.Errorf("supersede: an empty branch prefix would match every pull request")
	}
	prs, err := p.pullRequests(ctx, n, &github.PullRequestListOptions{State: "open"})
	if err != nil {
		return nil, err
	}
	var closed []int
	for _, pr := range prs {
		ref := pr.GetHead().GetRef()
		// Only branches of this repository: a fork's branch of the same name is someone else's.
		if !strings.HasPrefix(ref, prefix) || ref == keep || !strings.EqualFold(pr.GetHead().GetRepo().GetFullName(), p.Owner+"/"+p.Repo) {
			continue
		}
		num := pr.GetNumber()
		if err := p.call(ctx, n, true, fmt.Sprintf("comment on pull request #%d", num), func() (*github.Response, error) {
			_, resp, err := p.Client.Issues.CreateComment(ctx, p.Owner, p.Repo, num, &github.IssueComment{Body: github.String(comment)})
			return resp, err
		}); err != nil {
			return closed, err
		}
		if err := p.call(ctx, n, true, fmt.Sprintf("close pull request #%d", num), func() (*github.Response, error) {
			_, resp, err := p.Client.PullRequests.Edit(ctx, p.Owner, p.Repo, num, &github.PullRequest{State: github.String("closed")})
			return resp, err
		}); err != nil {
			return closed, err
		}
		if err := p.call(ctx, n, true, "delete branch "+ref, func() (*github.Response, error) {
			resp, err := p.Client.Git.DeleteRef(ctx, p.Owner, p.Repo, "heads/"+ref)
			if resp != nil && resp.StatusCode == http.StatusUnprocessableEntity {
				return resp, nil // already gone
			}
			return resp, err
		}); err != nil {
			return closed, err
		}
		fmt.Fprintf(p.log(), "closed pull request #%d (%s): %s\n", num, ref, comment)
		closed = append(closed, num)
	}
	return closed, nil
}

func (p *GitHub) pullRequests(ctx context.Context, n *APICalls, opts *github.PullRequestListOptions) ([]*github.PullRequest, error) {
	opts.PerPage = 100
	var out []*github.PullRequest
	for {
		var page []*github.PullRequest
		var resp *github.Response
		err := p.call(ctx, n, false, "list pull requests", func() (*github.Response, error) {
			var err error
			page, resp, err = p.Client.PullRequests.List(ctx, p.Owner, p.Repo, opts)
			return resp, err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if resp == nil || resp.NextPage == 0 {
			sort.Slice(out, func(i, j int) bool { return out[i].GetNumber() < out[j].GetNumber() })
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// pushChange makes Branch one commit on top of Base holding the change, and returns its head. A branch
// already so is left alone; a branch whose head another hand made is refused rather than overwritten.
func (p *GitHub) pushChange(ctx context.Context, res *Proposal, c Change) (string, error) {
	base, err := p.ref(ctx, &res.APICalls, c.Base)
	if err != nil {
		return "", err
	}
	if base == "" {
		return "", fmt.Errorf("base branch %s does not exist in %s/%s", c.Base, p.Owner, p.Repo)
	}
	head, err := p.ref(ctx, &res.APICalls, c.Branch)
	if err != nil {
		return "", err
	}
	if head != "" {
		current, err := p.branchHolds(ctx, &res.APICalls, c, base, head)
		if err != nil {
			return "", err
		}
		if current {
			return head, nil
		}
	}
	commit, err := p.commitChange(ctx, &res.APICalls, c, base)
	if err != nil {
		return "", err
	}
	if err := p.pointBranch(ctx, &res.APICalls, c.Branch, head, commit); err != nil {
		return "", err
	}
	res.Pushed = true
	fmt.Fprintf(p.log(), "branch %s -> %s (on %s %s)\n", c.Branch, short(commit), c.Base, short(base))
	return commit, nil
}

// branchHolds reports whether the branch's head is already the change's one commit on base. A head
// commit this tool did not make is an error: the branch is a person's now.
func (p *GitHub) branchHolds(ctx context.Context, n *APICalls, c Change, base, head string) (bool, error) {
	hc, err := p.commit(ctx, n, head)
	if err != nil {
		return false, err
	}
	if strings.TrimSpace(hc.GetMessage()) != strings.TrimSpace(c.CommitMessage) {
		return false, fmt.Errorf("branch %s has a commit this tool did not make (%s: %q): leaving it alone; merge or close its pull request, or delete the branch", c.Branch, short(head), firstLine(hc.GetMessage()))
	}
	if len(hc.Parents) != 1 || hc.Parents[0].GetSHA() != base {
		return false, nil
	}
	tree, err := p.tree(ctx, n, hc.GetTree().GetSHA())
	if err != nil {
		return false, err
	}
	return holds(tree, c.Files), nil
}

// commitChange writes the change's files as a tree over base's, and a commit of it on base.
func (p *GitHub) commitChange(ctx context.Context, n *APICalls, c Change, base string) (string, error) {
	// The base's tree gives the modes of the files the change replaces.
	baseCommit, err := p.commit(ctx, n, base)
	if err != nil {
		return "", err
	}
	baseTree, err := p.tree(ctx, n, baseCommit.GetTree().GetSHA())
	if err != nil {
		return "", err
	}
	var entries []*github.TreeEntry
	for _, path := range slices.Sorted(maps.Keys(c.Files)) {
		mode := "100644"
		if e, ok := baseTree[path]; ok {
			mode = e.GetMode()
		}
		entries = append(entries, &github.TreeEntry{Path: github.String(path), Mode: github.String(mode), Type: github.String("blob"), Content: github.String(string(c.Files[path]))})
	}
	var tree *github.Tree
	if err := p.call(ctx, n, true, "write the tree", func() (*github.Response, error) {
		var resp *github.Response
		var err error
		tree, resp, err = p.Client.Git.CreateTree(ctx, p.Owner, p.Repo, baseCommit.GetTree().GetSHA(), entries)
		return resp, err
	}); err != nil {
		return "", err
	}
	var commit *github.Commit
	if err := p.call(ctx, n, true, "write the commit", func() (*github.Response, error) {
		var resp *github.Response
		var err error
		commit, resp, err = p.Client.Git.CreateCommit(ctx, p.Owner, p.Repo, &github.Commit{
			Message: github.String(c.CommitMessage), Tree: &github.Tree{SHA: tree.SHA}, Parents: []*github.Commit{{SHA: github.String(base)}}}, nil)
		return resp, err
	}); err != nil {
		return "", err
	}
	return commit.GetSHA(), nil
}

// pointBranch creates the branch at commit, or moves it there from head.
func (p *GitHub) pointBranch(ctx context.Context, n *APICalls, branch, head, commit string) error {
	ref := &github.Reference{Ref: github.String("refs/heads/" + branch), Object: &github.GitObject{SHA: github.String(commit)}}
	what := "create branch " + branch
	if head != "" {
		what = "move branch " + branch
	}
	return p.call(ctx, n, true, what, func() (*github.Response, error) {
		if head == "" {
			_, resp, err := p.Client.Git.CreateRef(ctx, p.Owner, p.Repo, ref)
			return resp, err
		}
		_, resp, err := p.Client.Git.UpdateRef(ctx, p.Owner, p.Repo, ref, true)
		return resp, err
	})
}

// ref returns the commit a branch points at, or "" when there is no such branch.
func (p *GitHub) ref(ctx context.Context, n *APICalls, branch string) (string, error) {
	var sha string
	err := p.call(ctx, n, false, "look up branch "+branch, func() (*github.Response, error) {
		r, resp, err := p.Client.Git.GetRef(ctx, p.Owner, p.Repo, "heads/"+branch)
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return resp, nil
		}
		sha = r.GetObject().GetSHA()
		return resp, err
	})
	return sha, err
}

func (p *GitHub) commit(ctx context.Context, n *APICalls, sha string) (*github.Commit, error) {
	var c *github.Commit
	err := p.call(ctx, n, false, "read commit "+short(sha), func() (*github.Response, error) {
		var resp *github.Response
		var err error
		c, resp, err = p.Client.Git.GetCommit(ctx, p.Owner, p.Repo, sha)
		return resp, err
	})
	return c, err
}

// tree returns a commit tree's blobs by path.
func (p *GitHub) tree(ctx context.Context, n *APICalls, sha string) (map[string]*github.TreeEntry, error) {
	var t *github.Tree
	err := p.call(ctx, n, false, "read tree "+short(sha), func() (*github.Response, error) {
		var resp *github.Response
		var err error
		t, resp, err = p.Client.Git.GetTree(ctx, p.Owner, p.Repo, sha, true)
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	out := map[string]*github.TreeEntry{}
	for _, e := range t.Entries {
		if e.GetType() == "blob" {
			out[e.GetPath()] = e
		}
	}
	return out, nil
}

// holds reports whether a tree has exactly these contents at these paths, by git blob id.
func holds(tree map[string]*github.TreeEntry, files map[string][]byte) bool {
	for path, data := range files {
		e, ok := tree[path]
		if !ok || e.GetSHA() != BlobID(data) {
			return false
		}
	}
	return true
}

// BlobID is git's object id of a blob with this content.
func BlobID(data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// dispatchOnce dispatches the workflow on the branch unless a run of it for the head commit exists.
func (p *GitHub) dispatchOnce(ctx context.Context, n *APICalls, workflow, branch, head string) (bool, error) {
	var runs *github.WorkflowRuns
	if err := p.call(ctx, n, false, "list "+workflow+" runs", func() (*github.Response, error) {
		var resp *github.Response
		var err error
		runs, resp, err = p.Client.Actions.ListWorkflowRunsByFileName(ctx, p.Owner, p.Repo, workflow, &github.ListWorkflowRunsOptions{HeadSHA: head})
		return resp, err
	}); err != nil {
		return false, err
	}
	if runs.GetTotalCount() > 0 {
		return false, nil
	}
	if err := p.call(ctx, n, true, "dispatch "+workflow+" on "+branch, func() (*github.Response, error) {
		return p.Client.Actions.CreateWorkflowDispatchEventByFileName(ctx, p.Owner, p.Repo, workflow, github.CreateWorkflowDispatchEventRequest{Ref: branch})
	}); err != nil {
		return false, err
	}
	fmt.Fprintf(p.log(), "%s dispatched on %s (%s)\n", workflow, branch, short(head))
	return true, nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
