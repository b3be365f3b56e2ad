package release

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// fakeRepo is the git data, pull request and workflow side of fakeGitHub, as GitHub documents it:
// blobs carry git's own object ids, refs move only forward unless forced, pull requests are filtered
// by state, head ("owner:branch") and base, and a dispatch records a run for the branch's head.
type fakeRepo struct {
	blobs    map[string][]byte
	trees    map[string]map[string]fakeEntry // tree id -> path -> entry
	commits  map[string]fakeCommit
	refs     map[string]string // branch -> commit
	pulls    []*fakePull
	comments map[int][]string
	runs     map[string]int // head commit -> runs of ci.yml
	dispatch []string       // branches ci.yml was dispatched on
}

type fakeEntry struct{ Mode, SHA string }

type fakeCommit struct {
	Tree, Message string
	Parents       []string
}

type fakePull struct {
	Number               int
	State, Title, Body   string
	Head, HeadRepo, Base string
	Merged               bool
}

func newFakeRepo() *fakeRepo {
	r := &fakeRepo{blobs: map[string][]byte{}, trees: map[string]map[string]fakeEntry{}, commits: map[string]fakeCommit{},
		refs: map[string]string{}, comments: map[int][]string{}, runs: map[string]int{}}
	return r
}

// commitFiles writes a commit of these files on top of parent ("" for a root commit) and returns its id.
func (r *fakeRepo) commitFiles(parent, message string, files map[string]string) string {
	entries := map[string]fakeEntry{}
	if parent != "" {
		for p, e := range r.trees[r.commits[parent].Tree] {
			entries[p] = e
		}
	}
	for p, data := range files {
		entries[p] = fakeEntry{Mode: "100644", SHA: r.blob([]byte(data))}
	}
	return r.commit(r.tree(entries), message, parent)
}

func (r *fakeRepo) blob(data []byte) string {
	id := BlobID(data)
	r.blobs[id] = data
	return id
}

func (r *fakeRepo) tree(entries map[string]fakeEntry) string {
	var paths []string
	for p := range entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	h := sha1.New()
	for _, p := range paths {
		fmt.Fprintf(h, "%s %s %s\n", entries[p].Mode, p, entries[p].SHA)
	}
	id := hex.EncodeToString(h.Sum(nil))
	r.trees[id] = entries
	return id
}

func (r *fakeRepo) commit(tree, message string, parents ...string) string {
	if len(parents) == 1 && parents[0] == "" {
		parents = nil
	}
	sum := sha1.Sum([]byte(fmt.Sprintf("%s\n%s\n%v\n%d", tree, message, parents, len(r.commits))))
	id := hex.EncodeToString(sum[:])
	r.commits[id] = fakeCommit{Tree: tree, Message: message, Parents: parents}
	return id
}

func (r *fakeRepo) addPull(head, headRepo, base, title, state string) *fakePull {
	pr := &fakePull{Number: len(r.pulls) + 1, State: state, Title: title, Head: head, HeadRepo: headRepo, Base: base}
	r.pulls = append(r.pulls, pr)
	return pr
}

func (r *fakeRepo) open() []string {
	var out []string
	for _, pr := range r.pulls {
		if pr.State == "open" {
			out = append(out, fmt.Sprintf("#%d %s", pr.Number, pr.Head))
		}
	}
	return out
}

var (
	reGitRef     = regexp.MustCompile(`^/api/v3/repos/o/r/git/refs?/heads/(.+)$`)
	reGitRefs    = regexp.MustCompile(`^/api/v3/repos/o/r/git/refs$`)
	reGitCommit  = regexp.MustCompile(`^/api/v3/repos/o/r/git/commits(?:/([0-9a-f]+))?$`)
	reGitTree    = regexp.MustCompile(`^/api/v3/repos/o/r/git/trees(?:/([0-9a-f]+))?$`)
	rePulls      = regexp.MustCompile(`^/api/v3/repos/o/r/pulls(?:/(\d+))?$`)
	reComments   = regexp.MustCompile(`^/api/v3/repos/o/r/issues/(\d+)/comments$`)
	reRuns       = regexp.MustCompile(`^/api/v3/repos/o/r/actions/workflows/ci\.yml/runs$`)
	reDispatches = regexp.MustCompile(`^/api/v3/repos/o/r/actions/workflows/ci\.yml/dispatches$`)
)

// serve answers the request if it is one of the repository's; it reports whether it did.
func (f *fakeGitHub) serveRepo(w http.ResponseWriter, req *http.Request) bool {
	r := f.repo
	path, m := req.URL.Path, []string(nil)
	match := func(re *regexp.Regexp, method string) bool {
		if req.Method != method {
			return false
		}
		m = re.FindStringSubmatch(path)
		return m != nil
	}
	var body map[string]any
	if req.Method != http.MethodGet {
		json.NewDecoder(req.Body).Decode(&body)
	}
	notFound := func() { f.json(w, 404, map[string]any{"message": "Not Found"}) }
	switch {
	case match(reGitRef, http.MethodGet):
		sha, ok := r.refs[m[1]]
		if !ok {
			notFound()
			break
		}
		f.json(w, 200, refJSON(m[1], sha))
	case match(reGitRefs, http.MethodPost):
		branch := strings.TrimPrefix(body["ref"].(string), "refs/heads/")
		if _, ok := r.refs[branch]; ok {
			f.json(w, 422, map[string]any{"message": "Reference already exists"})
			break
		}
		r.refs[branch] = body["sha"].(string)
		f.json(w, 201, refJSON(branch, r.refs[branch]))
	case match(reGitRef, http.MethodPatch):
		old, ok := r.refs[m[1]]
		sha := body["sha"].(string)
		if !ok {
			f.json(w, 422, map[string]any{"message": "Reference does not exist"})
			break
		}
		if force, _ := body["force"].(bool); !force && !r.descends(sha, old) {
			f.json(w, 422, map[string]any{"message": "Update is not a fast forward"})
			break
		}
		r.refs[m[1]] = sha
		f.json(w, 200, refJSON(m[1], sha))
	case match(reGitRef, http.MethodDelete):
		if _, ok := r.refs[m[1]]; !ok {
			f.json(w, 422, map[string]any{"message": "Reference does not exist"})
			break
		}
		delete(r.refs, m[1])
		w.WriteHeader(204)
	case match(reGitCommit, http.MethodGet) && m[1] != "":
		c, ok := r.commits[m[1]]
		if !ok {
			notFound()
			break
		}
		var parents []any
		for _, p := range c.Parents {
			parents = append(parents, map[string]any{"sha": p})
		}
		f.json(w, 200, map[string]any{"sha": m[1], "message": c.Message, "tree": map[string]any{"sha": c.Tree}, "parents": parents})
	case match(reGitCommit, http.MethodPost) && m[1] == "":
		var parents []string
		for _, p := range body["parents"].([]any) {
			parents = append(parents, p.(string))
		}
		tree := body["tree"].(string)
		if _, ok := r.trees[tree]; !ok {
			f.json(w, 422, map[string]any{"message": "Tree SHA does not exist"})
			break
		}
		id := r.commit(tree, body["message"].(string), parents...)
		f.json(w, 201, map[string]any{"sha": id, "tree": map[string]any{"sha": tree}})
	case match(reGitTree, http.MethodGet) && m[1] != "":
		t, ok := r.trees[m[1]]
		if !ok {
			notFound()
			break
		}
		var entries []any
		for p, e := range t {
			entries = append(entries, map[string]any{"path": p, "mode": e.Mode, "type": "blob", "sha": e.SHA})
		}
		f.json(w, 200, map[string]any{"sha": m[1], "tree": entries, "truncated": false})
	case match(reGitTree, http.MethodPost) && m[1] == "":
		entries := map[string]fakeEntry{}
		if base, _ := body["base_tree"].(string); base != "" {
			for p, e := range r.trees[base] {
				entries[p] = e
			}
		}
		for _, e := range body["tree"].([]any) {
			e := e.(map[string]any)
			entries[e["path"].(string)] = fakeEntry{Mode: e["mode"].(string), SHA: r.blob([]byte(e["content"].(string)))}
		}
		f.json(w, 201, map[string]any{"sha": r.tree(entries)})
	case match(rePulls, http.MethodGet) && m[1] == "":
		q := req.URL.Query()
		state := q.Get("state")
		if state == "" {
			state = "open"
		}
		out := []any{}
		for _, pr := range r.pulls {
			if (state != "all" && pr.State != state) || (q.Get("base") != "" && pr.Base != q.Get("base")) ||
				(q.Get("head") != "" && q.Get("head") != strings.SplitN(pr.HeadRepo, "/", 2)[0]+":"+pr.Head) {
				continue
			}
			out = append(out, f.pullJSON(pr))
		}
		f.json(w, 200, out)
	case match(rePulls, http.MethodPost) && m[1] == "":
		head := body["head"].(string)
		for _, pr := range r.pulls {
			if pr.State == "open" && pr.Head == head && pr.HeadRepo == "o/r" {
				f.json(w, 422, map[string]any{"message": "Validation Failed", "errors": []any{map[string]string{"message": "A pull request already exists for o:" + head + "."}}})
				return true
			}
		}
		if _, ok := r.refs[head]; !ok {
			f.json(w, 422, map[string]any{"message": "Validation Failed", "errors": []any{map[string]string{"field": "head", "code": "invalid"}}})
			break
		}
		pr := r.addPull(head, "o/r", body["base"].(string), body["title"].(string), "open")
		pr.Body, _ = body["body"].(string)
		f.json(w, 201, f.pullJSON(pr))
	case match(rePulls, http.MethodPatch) && m[1] != "":
		n, _ := strconv.Atoi(m[1])
		if n < 1 || n > len(r.pulls) {
			notFound()
			break
		}
		pr := r.pulls[n-1]
		if v, ok := body["state"].(string); ok {
			pr.State = v
		}
		if v, ok := body["title"].(string); ok {
			pr.Title = v
		}
		if v, ok := body["body"].(string); ok {
			pr.Body = v
		}
		if v, ok := body["base"].(string); ok {
			pr.Base = v
		}
		f.json(w, 200, f.pullJSON(pr))
	case match(reComments, http.MethodPost):
		n, _ := strconv.Atoi(m[1])
		r.comments[n] = append(r.comments[n], body["body"].(string))
		f.json(w, 201, map[string]any{"id": 1, "body": body["body"]})
	case match(reRuns, http.MethodGet):
		f.json(w, 200, map[string]any{"total_count": r.runs[req.URL.Query().Get("head_sha")], "workflow_runs": []any{}})
	case match(reDispatches, http.MethodPost):
		branch := body["ref"].(string)
		r.runs[r.refs[branch]]++
		r.dispatch = append(r.dispatch, branch)
		w.WriteHeader(204)
	default:
		return false
	}
	return true
}

// descends reports whether commit c has ancestor a.
func (r *fakeRepo) descends(c, a string) bool {
	for c != "" {
		if c == a {
			return true
		}
		ps := r.commits[c].Parents
		if len(ps) == 0 {
			return false
		}
		c = ps[0]
	}
	return false
}

func refJSON(branch, sha string) map[string]any {
	return map[string]any{"ref": "refs/heads/" + branch, "object": map[string]any{"sha": sha, "type": "commit"}}
}

func (f *fakeGitHub) pullJSON(pr *fakePull) map[string]any {
	var merged any
	if pr.Merged {
		merged = "2026-11-01T00:00:00Z"
	}
	return map[string]any{"number": pr.Number, "state": pr.State, "title": pr.Title, "body": pr.Body, "merged_at": merged,
		"html_url": fmt.Sprintf("https://github.com/o/r/pull/%d", pr.Number),
		"head":     map[string]any{"ref": pr.Head, "repo": map[string]any{"full_name": pr.HeadRepo}},
		"base":     map[string]any{"ref": pr.Base}}
}
