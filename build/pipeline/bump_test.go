package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/simple-uml/simple-uml/build/config"
)

// releasesJSON is the real releases.json fixture with edits: old -> new text.
func releasesJSON(t *testing.T, edits ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "..", "shared", "fixtures", "kernelorg", "releases-2026-08-30.json"))
	if err != nil {
		t.Fatalf("shared fixture missing: %v", err)
	}
	for i := 0; i+1 < len(edits); i += 2 {
		if !bytes.Contains(data, []byte(edits[i])) {
			t.Fatalf("fixture lacks %q", edits[i])
		}
		data = bytes.Replace(data, []byte(edits[i]), []byte(edits[i+1]), -1)
	}
	return data
}

// lockCopy is a copy of the repository's kernel.lock for Bump to rewrite.
func lockCopy(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "kernel.lock"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "kernel.lock")
	os.WriteFile(p, data, 0o644)
	return p
}

func TestBump(t *testing.T) {
	newer := []string{`"version": "6.12.107"`, `"version": "6.12.120"`, "linux-6.12.107", "linux-6.12.120", "patch-6.12.107", "patch-6.12.120"}
	other, _ := openpgp.NewEntity("Someone else", "", "else@test.invalid", nil)
	cases := []struct {
		name     string
		releases []string // edits to the real releases.json
		publish  string   // version whose sha256sums.asc the mirror signs; "" none
		signer   *openpgp.Entity
		unlisted bool // the signed list lacks the tarball
		opts     BumpOptions
		series   string // kernel.series; "" keeps the repository's
		want     string // error text, or "" for a bump to wantVer
		wantVer  string
	}{
		{name: "newer point release", releases: newer, publish: "6.12.120", wantVer: "6.12.120"},
		{name: "dry run", releases: newer, publish: "6.12.120", opts: BumpOptions{DryRun: true}, wantVer: "6.12.117"},
		{name: "exact version", publish: "6.12.118", opts: BumpOptions{Version: "6.12.118"}, wantVer: "6.12.118"},
		{name: "downgrade", want: "refusing to downgrade"},
		{name: "another, older branch", series: "6.6", publish: "6.6.155", wantVer: "6.6.155"},
		{name: "end of life", releases: append(append([]string{}, newer...), "\"6.12.120\",\n            \"iseol\": false", "\"6.12.120\",\n            \"iseol\": true"), publish: "6.12.120", want: "end of life"},
		{name: "end of life, allowed", releases: append(append([]string{}, newer...), "\"6.12.120\",\n            \"iseol\": false", "\"6.12.120\",\n            \"iseol\": true"), publish: "6.12.120", opts: BumpOptions{AllowEOL: true}, wantVer: "6.12.120"},
		{name: "not yet signed", releases: newer, publish: "6.12.120", unlisted: true, want: "try again later"},
		{name: "bad signature", releases: newer, publish: "6.12.120", signer: other, want: "signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMirror(t)
			m.put("/releases.json", releasesJSON(t, c.releases...))
			if c.publish != "" {
				signer := m.signer
				if c.signer != nil {
					signer = c.signer
				}
				var sums map[string]string
				if c.unlisted {
					sums = map[string]string{"linux-" + c.publish + ".tar.xz": ""}
				}
				m.publish(t, c.publish, []byte("tarball of "+c.publish), signer, sums)
			}
			var extra map[string]string
			if c.series != "" {
				extra = map[string]string{"SUML_KERNEL_SERIES": c.series}
			}
			cfg := m.testConfig(t, "6.12.117", extra)
			lock := lockCopy(t)
			before, _ := os.ReadFile(lock)
			opts := c.opts
			opts.LockPath = lock
			var out bytes.Buffer
			res, err := Bump(context.Background(), cfg, opts, &out)
			after, _ := os.ReadFile(lock)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v, want an error with %q", err, c.want)
				}
				if !bytes.Equal(before, after) {
					t.Error("a refused bump changed the lock")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(after), `version = "`+c.wantVer+`"`) {
				t.Fatalf("lock:\n%s\noutput:\n%s", after, out.String())
			}
			if c.opts.DryRun {
				if !bytes.Equal(before, after) || !strings.Contains(out.String(), "dry run") {
					t.Errorf("dry run changed the lock or said nothing:\n%s", out.String())
				}
				return
			}
			// Only the pin changed: every other line is as it was.
			bl, al := strings.Split(string(before), "\n"), strings.Split(string(after), "\n")
			if len(bl) != len(al) {
				t.Fatalf("line count changed")
			}
			for i := range bl {
				if bl[i] != al[i] && !strings.HasPrefix(bl[i], "version") && !strings.HasPrefix(bl[i], "sha256") && !strings.HasPrefix(bl[i], "released") {
					t.Errorf("line %d changed: %q -> %q", i+1, bl[i], al[i])
				}
			}
			if len(res.New.SHA256) != 64 || !strings.Contains(string(after), `sha256 = "`+res.New.SHA256+`"`) {
				t.Errorf("sha256 not pinned: %+v", res.New)
			}
			if c.name == "newer point release" && (res.New.Released != "2026-08-28" || !strings.Contains(out.String(), "6.12.117 -> 6.12.120") || !strings.Contains(out.String(), "ChangeLog-6.12.120")) {
				t.Errorf("released %q, output:\n%s", res.New.Released, out.String())
			}
			// The pull request a bump proposes: the rewritten lock on the version's branch, and the
			// same commit from every run for that version.
			ch := BumpChange(cfg, res, after)
			if ch.Branch != "bump/linux-"+c.wantVer || !bytes.Equal(ch.Files["kernel.lock"], after) || len(ch.Files) != 1 ||
				!strings.Contains(ch.Body, res.New.SHA256) || !strings.Contains(ch.Body, "ChangeLog-"+c.wantVer) ||
				!strings.HasPrefix(ch.CommitMessage, "Bump Linux to "+c.wantVer+"\n") || ch.CommitMessage != BumpChange(cfg, res, after).CommitMessage {
				t.Errorf("bump change: %+v", ch)
			}
			// Bumping again is a no-op that says so.
			cfg.Pin = res.New
			again, err := Bump(context.Background(), cfg, opts, &out)
			if err != nil || again.Changed || !strings.Contains(out.String(), "up to date") {
				t.Errorf("second bump: changed %v, %v", again.Changed, err)
			}
		})
	}
}

func TestBumpPRNeedsRepository(t *testing.T) {
	m := newMirror(t)
	cfg := m.testConfig(t, "6.12.117", nil)
	env := map[string]string{"GITHUB_REPOSITORY": "o/r"}
	for _, c := range []struct{ name, want string }{
		{"no repository", "GITHUB_REPOSITORY"},
		{"no token", "GITHUB_TOKEN is not set"},
	} {
		t.Run(c.name, func(t *testing.T) {
			getenv := func(k string) string { return env[k] }
			if c.name == "no repository" {
				getenv = func(string) string { return "" }
			}
			_, err := BumpPR(context.Background(), cfg, getenv, BumpPROptions{}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
			if m.hitCount("/releases.json") != 0 {
				t.Error("kernel.org was asked before the GitHub settings were checked")
			}
		})
	}
}

// TestBumpSeries bumps series kept beside the default one: each rewrites its own table of
// kernel.lock, a series not pinned yet gets a table, and the default series' pin stays as it was.
func TestBumpSeries(t *testing.T) {
	m := newMirror(t)
	m.put("/releases.json", releasesJSON(t))
	// One signed list in v6.x/ names both tarballs.
	sum := sha256.Sum256([]byte("tarball of 6.6.155"))
	m.put("/pub/linux/kernel/v6.x/linux-6.6.155.tar.xz", []byte("tarball of 6.6.155"))
	m.publish(t, "6.1.186", []byte("tarball of 6.1.186"), m.signer, map[string]string{"linux-6.6.155.tar.xz": hex.EncodeToString(sum[:])})
	lock := filepath.Join(t.TempDir(), "kernel.lock")
	start := "# pins\nversion = \"6.12.117\"\nsha256 = \"\"\nreleased = \"\"\n\n[series.\"6.1\"] # the old longterm\nversion = \"6.1.180\"\nsha256 = \"\"\nreleased = \"\"\n"
	os.WriteFile(lock, []byte(start), 0o644)
	cfg := m.testConfig(t, "6.12.117", nil)
	cfg.OtherPins = map[string]config.KernelPin{"6.1": {Version: "6.1.180"}}
	for _, series := range []string{"6.1", "6.6"} {
		sc, err := cfg.ForSeries(series)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := Bump(context.Background(), sc, BumpOptions{LockPath: lock}, &out); err != nil {
			t.Fatalf("bump -series=%s: %v\n%s", series, err, out.String())
		}
	}
	data, _ := os.ReadFile(lock)
	top, others, err := config.DecodeLock(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if top.Version != "6.12.117" || top.SHA256 != "" || others["6.1"].Version != "6.1.186" || others["6.6"].Version != "6.6.155" || len(others["6.6"].SHA256) != 64 {
		t.Errorf("lock after bumping 6.1 and 6.6:\n%s", data)
	}
	if !strings.HasPrefix(string(data), "# pins\nversion = \"6.12.117\"\nsha256 = \"\"\nreleased = \"\"\n\n[series.\"6.1\"] # the old longterm\nversion = \"6.1.186\"\n") {
		t.Errorf("the lock's layout changed:\n%s", data)
	}
	// A table laid out in a way the rewrite does not follow is refused, not written wrong.
	os.WriteFile(lock, []byte("version = \"6.12.117\"\nsha256 = \"\"\nreleased = \"\"\nseries.\"6.1\".version = \"6.1.180\"\n"), 0o644)
	sc, _ := cfg.ForSeries("6.1")
	if _, err := Bump(context.Background(), sc, BumpOptions{LockPath: lock}, io.Discard); err == nil || !strings.Contains(err.Error(), "edit it by hand") {
		t.Errorf("a dotted-key pin: err = %v", err)
	}
}
