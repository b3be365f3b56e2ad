package pipeline

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBisectRefuses: what mage bisect will not start on, each refused before anything is built or
// checked out, with an error that names the fix.
func TestBisectRefuses(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed (.ci/run installs it)")
	}
	tree := t.TempDir()
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", tree, "-c", "user.name=t", "-c", "user.email=t@example.invalid"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main")
	for _, c := range []string{"one", "two"} {
		os.WriteFile(filepath.Join(tree, "file"), []byte(c), 0o644)
		git("add", "file")
		git("commit", "-q", "-m", c)
	}
	dist := t.TempDir()
	env := map[string]string{"SUML_KERNEL_TREE": tree, "SUML_DIST": dist, "SUML_CACHE": t.TempDir(), "SUML_ROOTFS_RECIPE": "test"}
	script := filepath.Join(t.TempDir(), "check.sh")
	os.WriteFile(script, []byte("true\n"), 0o755)
	ok := BisectRequest{Good: "HEAD~1", Bad: "HEAD", KUnit: "list*"}
	tests := []struct {
		name  string
		env   map[string]string
		req   BisectRequest
		setup func()
		want  string
	}{
		{"no tree", map[string]string{"SUML_KERNEL_TREE": ""}, ok, nil, "set kernel.tree"},
		{"no good commit", nil, BisectRequest{Bad: "HEAD"}, nil, "-good=<commit>"},
		{"a script and a filter", nil, BisectRequest{Good: "HEAD~1", Bad: "HEAD", Script: script, KUnit: "list*"}, nil, "not both"},
		{"an option as a revision", nil, BisectRequest{Good: "--output=/tmp/x", Bad: "HEAD", KUnit: "list*"}, nil, `revision "--output=/tmp/x"`},
		{"no such commit", nil, BisectRequest{Good: "v0.0", Bad: "HEAD", KUnit: "list*"}, nil, `"v0.0" is not a commit`},
		{"a filter that is not one", nil, BisectRequest{Good: "HEAD~1", Bad: "HEAD", KUnit: "x kunit.enable=0"}, nil, "globs"},
		{"no image to boot", nil, BisectRequest{Good: "HEAD~1", Bad: "HEAD", Script: script}, nil, "go tool mage rootfs"},
		{"changes not committed", nil, ok, func() { os.WriteFile(filepath.Join(tree, "file"), []byte("changed"), 0o644) }, "commit or stash"},
		{"a bisect of yours", nil, ok, func() { git("checkout", "-q", "--", "file"); git("bisect", "start", "HEAD", "HEAD~1") }, "git bisect reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tt.env {
				e[k] = v
			}
			cfg := loadConfig(t, e, nil)
			_, err := Bisect(context.Background(), cfg, tt.req, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// The bisect that was going on is still the user's.
	git("bisect", "log")
}
