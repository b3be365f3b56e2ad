package release

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

// TestGitHubErrorsNameTheFix: a refused token, an unknown repository and a missing permission say
// which setting to change.
func TestGitHubErrorsNameTheFix(t *testing.T) {
	p := &GitHub{Owner: "o", Repo: "r"}
	for status, want := range map[int]string{401: "GitHub refused GITHUB_TOKEN", 404: "check GITHUB_REPOSITORY", 403: "contents:write on o/r"} {
		err := &github.ErrorResponse{Response: &http.Response{StatusCode: status, Request: &http.Request{Method: "GET", URL: &url.URL{Path: "/x"}}}, Message: "m"}
		if got := p.Explain(fmt.Errorf("list releases: %w", err)); !strings.Contains(got.Error(), want) {
			t.Errorf("%d: %v", status, got)
		}
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		need string
		want string // in the error; "" for none
	}{
		{map[string]string{"GITHUB_REPOSITORY": "o/r"}, "", ""},
		{map[string]string{"GITHUB_REPOSITORY": "o/r"}, "contents:write", "GITHUB_TOKEN is not set"},
		{map[string]string{"GITHUB_REPOSITORY": "o/r.git"}, "", "owner/name"},
		{map[string]string{"GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": "://bad"}, "", "GITHUB_API_URL"},
	}
	for _, tt := range tests {
		p, err := FromEnv(func(k string) string { return tt.env[k] }, tt.need, nil)
		if tt.want == "" {
			if err != nil || p.Owner != "o" || p.Repo != "r" || !p.Anonymous {
				t.Errorf("%v: %+v, %v", tt.env, p, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.env, err, tt.want)
		}
	}
}
