package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/artifact"
	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/kernel"
	"github.com/simple-uml/simple-uml/build/manifest"
	"github.com/simple-uml/simple-uml/build/releasedir"
)

// fakeKernelDist writes what `mage kernel` leaves in dist/, with small stand-in files and a record
// that describes them (the real kernel is built in the end-to-end test).
func fakeKernelDist(t testing.TB, dist string) {
	t.Helper()
	os.MkdirAll(dist, 0o755)
	outputs := map[string]string{kernel.LinuxName: "ELF stand-in\n", kernel.ConfigName: "CONFIG_UML=y\n", kernel.SystemMapName: "0000 T start_kernel\n", kernel.LicenseName: "GPL-2.0 stand-in\n"}
	rec := manifest.KernelRecord{Version: "6.12.117", Subarch: "x86_64", Compiler: "gcc 12",
		BuildEnv: []string{"KBUILD_BUILD_TIMESTAMP=Sat, 14 Nov 2026 12:56:01 +0000"}, Outputs: map[string]string{}}
	for name, body := range outputs {
		p := filepath.Join(dist, name)
		os.WriteFile(p, []byte(body), 0o644)
		rec.Outputs[name], _ = digest.File(p)
	}
	if err := files.WriteJSON(filepath.Join(dist, manifest.KernelRecordName), rec); err != nil {
		t.Fatal(err)
	}
}

// distReady is a dist/ holding the busybox test image (no INSTALL scripts) and a stand-in kernel,
// ready for `mage dist`.
func distReady(t *testing.T) config.Config {
	t.Helper()
	requireImageTools(t)
	repo := newXbpsRepo(t, busyboxPackages(t, false))
	cfg := rootfsConfig(t, recipeDir(t, repo, "", nil), nil)
	if _, err := Rootfs(context.Background(), cfg, "", testLog(t)); err != nil {
		t.Fatal(err)
	}
	fakeKernelDist(t, cfg.Paths.Dist)
	return cfg
}

// TestDist makes release assets twice from the same dist/ and checks they are byte-identical, that
// `sha256sum -c` accepts them, that verify passes, and that verify catches one flipped byte.
func TestDist(t *testing.T) {
	cfg := distReady(t)
	ctx := context.Background()

	first, err := Dist(ctx, cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if first.Tag != "v6.12.117-1" {
		t.Errorf("tag %s", first.Tag)
	}
	want := []string{"RELEASE-NOTES.md", "SHA256SUMS", "manifest.json", "simple-uml-6.12.117-1.cdx.json", "simple-uml-linux-6.12.117-1-um-x86_64.tar.xz",
		"simple-uml-rootfs-test-x86_64-6.12.117-1.ext4.zst", "simple-uml-rootfs-test-x86_64-6.12.117-1.tar.zst"}
	if strings.Join(first.Assets, " ") != strings.Join(want, " ") {
		t.Fatalf("assets %v, want %v", first.Assets, want)
	}
	// What varies between runs is logged beside the outputs, not in them.
	var last RunEntry
	lines := strings.Split(strings.TrimSpace(string(mustRead(t, filepath.Join(cfg.Paths.Dist, RunLogName)))), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Target != "dist" || last.Output != "v6.12.117-1" || last.Hostname == "" {
		t.Errorf("run log %q: %+v %v", lines, last, err)
	}
	host, _ := os.Hostname()
	if data := mustRead(t, filepath.Join(first.Dir, manifest.ManifestName)); bytes.Contains(data, []byte(host)) || bytes.Contains(data, []byte(cfg.Paths.Cache)) {
		t.Error("manifest.json names the host or the cache folder")
	}
	snapshot := map[string][]byte{}
	for _, a := range first.Assets {
		snapshot[a], _ = os.ReadFile(filepath.Join(first.Dir, a))
	}
	again, err := Dist(ctx, cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if !again.UpToDate || strings.Join(again.Assets, " ") != strings.Join(want, " ") {
		t.Errorf("a rerun on the same inputs was not a no-op: %+v", again)
	}
	// A missing asset makes the release be written again, the same bytes.
	os.Remove(filepath.Join(first.Dir, want[5]))
	if again, err = Dist(ctx, cfg, testLog(t)); err != nil || again.UpToDate {
		t.Fatalf("after an asset went missing: up to date %v, %v", again.UpToDate, err)
	}
	for _, a := range again.Assets {
		data, _ := os.ReadFile(filepath.Join(again.Dir, a))
		if !bytes.Equal(data, snapshot[a]) {
			t.Errorf("%s differs between two runs on the same inputs", a)
		}
	}
	if leftovers, _ := filepath.Glob(filepath.Join(cfg.Paths.Dist, ".release*")); len(leftovers) > 0 {
		t.Errorf("temporary folders left: %v", leftovers)
	}

	cmd := exec.Command("sha256sum", "-c", "SHA256SUMS")
	cmd.Dir = first.Dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	m, err := manifest.Verify(first.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Rootfs) != 1 || len(m.Rootfs[0].Packages) != 5 || m.Kernel.Version != "6.12.117" || m.SourceDateEpoch != 1794660961 {
		t.Errorf("manifest: %d rootfs, kernel %s, epoch %d", len(m.Rootfs), m.Kernel.Version, m.SourceDateEpoch)
	}
	if bytes.Contains(snapshot["manifest.json"], []byte(cfg.Paths.Dist)) {
		t.Error("the manifest holds a host path")
	}
	var sbom struct {
		BOMFormat  string
		Components []struct{ Components []any }
	}
	if err := json.Unmarshal(snapshot["simple-uml-6.12.117-1.cdx.json"], &sbom); err != nil || sbom.BOMFormat != "CycloneDX" ||
		len(sbom.Components) != 2 || len(sbom.Components[1].Components) != 5 {
		t.Errorf("SBOM: %+v %v", sbom, err)
	}

	flip := filepath.Join(first.Dir, "simple-uml-linux-6.12.117-1-um-x86_64.tar.xz")
	data := snapshot["simple-uml-linux-6.12.117-1-um-x86_64.tar.xz"]
	data[len(data)/2] ^= 1
	os.WriteFile(flip, data, 0o644)
	if _, err := manifest.Verify(first.Dir); err == nil || !strings.Contains(err.Error(), "simple-uml-linux-6.12.117-1-um-x86_64.tar.xz: sha256 differs") {
		t.Fatalf("flipped byte: %v", err)
	}
	// A manifest that disagrees with SHA256SUMS is caught too (a consistent swap of both is what the
	// release signature of a later issue is for).
	os.WriteFile(flip, snapshot["simple-uml-linux-6.12.117-1-um-x86_64.tar.xz"], 0o644)
	man := bytes.Replace(snapshot["manifest.json"], []byte(`"simple-uml-linux-6.12.117-1-um-x86_64.tar.xz": "`), []byte(`"simple-uml-linux-6.12.117-1-um-x86_64.tar.xz": "0`), 1)
	os.WriteFile(filepath.Join(first.Dir, "manifest.json"), man, 0o644)
	if _, err := manifest.Verify(first.Dir); err == nil || !strings.Contains(err.Error(), "manifest.json") {
		t.Fatalf("changed manifest: %v", err)
	}

	// The next revision's notes compare with the release dist/ held.
	os.WriteFile(flip, snapshot["simple-uml-linux-6.12.117-1-um-x86_64.tar.xz"], 0o644)
	next, err := Dist(ctx, rootfsConfig(t, cfg.Paths.Recipes, map[string]string{"SUML_DIST": cfg.Paths.Dist, "SUML_CACHE": cfg.Paths.Cache, "SUML_RELEASE_REVISION": "2"}), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	notes, _ := os.ReadFile(filepath.Join(next.Dir, manifest.NotesName))
	if next.Tag != "v6.12.117-2" || !strings.Contains(string(notes), "## Changes since v6.12.117-1") || !strings.Contains(string(notes), "No changes in inputs") {
		t.Errorf("notes of %s:\n%s", next.Tag, notes)
	}

	// A dist/ whose kernel no longer matches its record is refused.
	os.WriteFile(filepath.Join(cfg.Paths.Dist, kernel.LinuxName), []byte("changed\n"), 0o755)
	if _, err := Dist(ctx, cfg, testLog(t)); err == nil || !strings.Contains(err.Error(), "rerun `go tool mage kernel`") {
		t.Fatalf("changed kernel: %v", err)
	}
}

// githubWithoutReleases is a GitHub API on loopback whose repository has no release yet (an empty
// list, 404 for a tag); requests are noted in methods when it is not nil.
func githubWithoutReleases(t *testing.T, methods *[]string) *httptest.Server {
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if methods != nil {
			*methods = append(*methods, r.Method+" "+r.URL.Path)
		}
		if strings.Contains(r.URL.Path, "/releases/tags/") {
			w.WriteHeader(404)
			io.WriteString(w, `{"message":"Not Found"}`)
			return
		}
		io.WriteString(w, `[]`)
	}))
	t.Cleanup(gh.Close)
	return gh
}

// TestPublishSettings checks `mage release`'s settings and its dry run against a GitHub that has no
// release yet (the publishing flows themselves are tested in build/release).
func TestPublishSettings(t *testing.T) {
	cfg := distReady(t)
	ctx := context.Background()
	if _, err := Dist(ctx, cfg, testLog(t)); err != nil {
		t.Fatal(err)
	}
	var methods []string
	gh := githubWithoutReleases(t, &methods)
	env := map[string]string{"GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": gh.URL + "/api/v3"}
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	plan, err := Publish(ctx, cfg, getenv, PublishOptions{DryRun: true}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Tag != "v6.12.117-1" || len(plan.Actions) != 7 || plan.Writes != 0 {
		t.Errorf("plan %+v", plan)
	}
	for _, m := range methods {
		if !strings.HasPrefix(m, "GET ") {
			t.Errorf("dry run made %s", m)
		}
	}
	if !strings.Contains(out.String(), "dry run") {
		t.Errorf("no plan printed:\n%s", out.String())
	}
	if _, err := Publish(ctx, cfg, getenv, PublishOptions{}, io.Discard); err == nil || !strings.Contains(err.Error(), "GITHUB_TOKEN") {
		t.Errorf("no token: %v", err)
	}
	// A tag push must be the tag of the release dist holds.
	env["GITHUB_REF_TYPE"], env["GITHUB_REF_NAME"] = "tag", "v6.12.117-2"
	if _, err := Publish(ctx, cfg, getenv, PublishOptions{DryRun: true}, io.Discard); err == nil || !strings.Contains(err.Error(), "v6.12.117-2 is not dist's release v6.12.117-1") {
		t.Errorf("wrong tag: %v", err)
	}
	env["GITHUB_REF_NAME"] = "v6.12.117-1"
	if _, err := Publish(ctx, cfg, getenv, PublishOptions{DryRun: true}, io.Discard); err != nil {
		t.Errorf("matching tag: %v", err)
	}
	for _, bad := range []string{"just-a-name", "o r/x y", "o/r.git", "o/..", "-o/r", "o/r/extra"} {
		env["GITHUB_REPOSITORY"] = bad
		if _, err := Publish(ctx, cfg, getenv, PublishOptions{DryRun: true}, io.Discard); err == nil || !strings.Contains(err.Error(), "owner/name") {
			t.Errorf("repository %q: %v", bad, err)
		}
	}
}

// releaseServer is a GitHub with one published release: the assets of a dist/release folder. As
// GitHub does, the API's asset URL answers application/octet-stream requests with a redirect to the
// storage host (here the same server reached as "localhost", another host to an HTTP client), whose
// pre-signed URLs refuse a request that carries a token; a private repository (token set) answers
// 404 to requests without it.
func releaseServer(t *testing.T, dir, tag string, tamper map[string]bool) *httptest.Server {
	return githubReleaseServer(t, dir, tag, tamper, "")
}

func githubReleaseServer(t *testing.T, dir, tag string, tamper map[string]bool, privateToken string) *httptest.Server {
	var srv *httptest.Server
	storage := func() string { return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) }
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api := strings.HasPrefix(r.URL.Path, "/api/")
		if api && privateToken != "" && r.Header.Get("Authorization") != "Bearer "+privateToken {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		entries, _ := os.ReadDir(dir)
		switch {
		case r.URL.Path == "/api/v3/repos/o/r/releases/latest" || r.URL.Path == "/api/v3/repos/o/r/releases/tags/"+tag:
			var assets []map[string]any
			for i, e := range entries {
				assets = append(assets, map[string]any{"id": i + 1, "name": e.Name(), "state": "uploaded",
					"url":                  fmt.Sprintf("%s/api/v3/repos/o/r/releases/assets/%d", srv.URL, i+1),
					"browser_download_url": srv.URL + "/o/r/releases/download/" + tag + "/" + e.Name()})
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"id": 1, "tag_name": tag, "assets": assets})
		case strings.HasPrefix(r.URL.Path, "/api/v3/repos/o/r/releases/assets/"):
			n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/api/v3/repos/o/r/releases/assets/"))
			if err != nil || n < 1 || n > len(entries) || r.Header.Get("Accept") != "application/octet-stream" {
				http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
				return
			}
			http.Redirect(w, r, storage()+"/storage/"+entries[n-1].Name(), http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/storage/"):
			if r.Header.Get("Authorization") != "" {
				t.Errorf("the storage host was sent a token for %s", r.URL.Path)
				http.Error(w, "Only one auth mechanism allowed", http.StatusBadRequest)
				return
			}
			name := strings.TrimPrefix(r.URL.Path, "/storage/")
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			if tamper[name] {
				data[len(data)/2] ^= 1
			}
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestFetchRelease downloads a published release into an empty dist/, and refuses a tampered one
// leaving nothing behind.
func TestFetchRelease(t *testing.T) {
	cfg := distReady(t)
	recipes := cfg.Paths.Recipes
	ctx := context.Background()
	res, err := Dist(ctx, cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	image := "simple-uml-rootfs-test-x86_64-6.12.117-1.ext4.zst"
	for _, tamper := range []bool{true, false} {
		srv := releaseServer(t, res.Dir, res.Tag, map[string]bool{image: tamper})
		env := map[string]string{"GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": srv.URL + "/api/v3"}
		fresh := rootfsConfig(t, recipes, nil)
		_, verr := VerifyRelease(ctx, fresh, func(k string) string { return env[k] }, res.Tag, testLog(t))
		if tamper != (verr != nil) {
			t.Errorf("verify of the published release (tampered %v): %v", tamper, verr)
		}
		m, err := FetchRelease(ctx, fresh, func(k string) string { return env[k] }, "", testLog(t))
		if tamper {
			if err == nil || !strings.Contains(err.Error(), "sha256") {
				t.Fatalf("tampered image: %v", err)
			}
			if entries, _ := os.ReadDir(fresh.Paths.Dist); len(entries) > 0 {
				t.Errorf("a refused release left %d entries in dist/", len(entries))
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Tag != res.Tag {
			t.Errorf("tag %s", m.Tag)
		}
		for _, name := range []string{kernel.LinuxName, kernel.ConfigName, kernel.SystemMapName, kernel.LicenseName, manifest.KernelRecordName, "test.ext4", "test.json"} {
			if _, err := os.Stat(filepath.Join(fresh.Paths.Dist, name)); err != nil {
				t.Error(err)
			}
		}
		orig, _ := digest.File(filepath.Join(cfg.Paths.Dist, "test.ext4"))
		got, _ := digest.File(filepath.Join(fresh.Paths.Dist, "test.ext4"))
		if orig != got {
			t.Error("the fetched image differs from the built one")
		}
		// What boot needs is there.
		if _, err := prepareGuest(fresh, io.Discard); err != nil {
			t.Fatalf("boot preparation on the fetched pair: %v", err)
		}
	}
	// A private repository: its API and assets answer only with the token, which never reaches the
	// storage host. The checkout fetching it has none of its recipes: the release boots anyway.
	srv := githubReleaseServer(t, res.Dir, res.Tag, nil, "private-token")
	fresh := rootfsConfig(t, t.TempDir(), nil)
	env := map[string]string{"GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": srv.URL + "/api/v3"}
	if _, err := FetchRelease(ctx, fresh, func(k string) string { return env[k] }, "", testLog(t)); err == nil || !strings.Contains(err.Error(), "check GITHUB_REPOSITORY") {
		t.Errorf("a private repository without a token: %v", err)
	}
	env["GITHUB_TOKEN"] = "private-token"
	if _, err := FetchRelease(ctx, fresh, func(k string) string { return env[k] }, "", testLog(t)); err != nil {
		t.Fatalf("a private repository with its token: %v", err)
	}
	g, err := prepareGuest(fresh, io.Discard)
	if err != nil {
		t.Fatalf("boot preparation without the recipe file: %v", err)
	}
	if g.recipe.Hostname != "suml-test" || g.recipe.RootPassword == "" {
		t.Errorf("recipe from the release's record: %+v", g.recipe)
	}
	// An asset the release's SHA256SUMS does not list is noticed.
	stray := t.TempDir()
	if err := os.CopyFS(stray, os.DirFS(res.Dir)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stray, "extra.txt"), []byte("not from mage dist"), 0o644)
	straySrv := releaseServer(t, stray, res.Tag, nil)
	strayEnv := map[string]string{"GITHUB_REPOSITORY": "o/r", "GITHUB_API_URL": straySrv.URL + "/api/v3"}
	if _, err := VerifyRelease(ctx, fresh, func(k string) string { return strayEnv[k] }, res.Tag, testLog(t)); err == nil || !strings.Contains(err.Error(), "extra.txt is not listed") {
		t.Errorf("a stray asset on the release: %v", err)
	}
	fresh.Boot.Recipe = "other"
	if _, err := FetchRelease(ctx, fresh, func(k string) string { return env[k] }, "", testLog(t)); err == nil || !strings.Contains(err.Error(), "it has: test") {
		t.Errorf("a recipe the release lacks: %v", err)
	}
}

// distChild is `mage dist` in a process of its own, configured by SUML_* variables.
func distChild() int {
	cfg, err := config.Load(os.Getenv("SUML_TEST_ROOT"), nil)
	if err == nil {
		_, err = Dist(context.Background(), cfg, os.Stdout)
	}
	if err != nil {
		fmt.Println("dist failed:", err)
		return 1
	}
	return 0
}

// syncBuffer is a bytes.Buffer a child process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestConcurrentRuns: a run that finds dist and the cache in use waits, saying for whom, and two runs
// at once both succeed with an intact release.
func TestConcurrentRuns(t *testing.T) {
	cfg := distReady(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := func(out io.Writer) *exec.Cmd {
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = childEnv(t, cfg, "dist")
		cmd.Stdout, cmd.Stderr = out, out
		return cmd
	}
	release := filepath.Join(cfg.Paths.Dist, releasedir.Name)

	_, run, err := startRun(context.Background(), cfg, "the test", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	waiter := child(&out)
	if err := waiter.Start(); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("waiting for another run (pid %d: the test) to finish", os.Getpid())
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			run.end()
			waiter.Wait()
			t.Fatalf("no waiting message; output:\n%s", out.String())
		}
	}
	if _, err := os.Stat(release); err == nil {
		t.Error("the waiting run wrote dist/release")
	}
	run.end()
	if err := waiter.Wait(); err != nil {
		t.Fatalf("the waiting run: %v\n%s", err, out.String())
	}

	// Two at once: both finish, and the release is whole.
	var outA, outB syncBuffer
	a, b := child(&outA), child(&outB)
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	errA, errB := a.Wait(), b.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("concurrent runs: %v, %v\n%s\n%s", errA, errB, outA.String(), outB.String())
	}
	if _, problems, err := artifact.VerifyDir(release); err != nil || len(problems) > 0 {
		t.Errorf("release after two concurrent runs: %v %v", problems, err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestRootfsDistReproducible builds the root filesystem and the release twice in separate cache and
// dist folders, the second time under another umask and time zone, and wants the same bytes. (The
// end-to-end TestReproEndToEnd adds the kernel build and the configure boot.)
func TestRootfsDistReproducible(t *testing.T) {
	requireImageTools(t)
	recipes := recipeDir(t, newXbpsRepo(t, busyboxPackages(t, false)), "", map[string]string{"etc/motd": "same bytes\n"})
	var releases []string
	for i := range 2 {
		if i == 1 {
			old := syscall.Umask(0o077)
			t.Cleanup(func() { syscall.Umask(old) })
			t.Setenv("TZ", "Pacific/Kiritimati")
			time.Sleep(1100 * time.Millisecond) // another second on the clock
		}
		cfg := rootfsConfig(t, recipes, nil)
		if _, err := Rootfs(context.Background(), cfg, "", testLog(t)); err != nil {
			t.Fatal(err)
		}
		fakeKernelDist(t, cfg.Paths.Dist)
		res, err := Dist(context.Background(), cfg, testLog(t))
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, res.Dir)
	}
	if d, err := artifact.CompareDirs(releases[0], releases[1]); err != nil || d != nil {
		t.Fatalf("the releases differ: %v %v", d, err)
	}
}

// TestDistRefusesCorruptRootfsRecord: a root filesystem's record that does not parse stops mage dist
// (it released without that root filesystem, silently); a JSON file with no image of its name is
// not a record and stays ignored.
func TestDistRefusesCorruptRootfsRecord(t *testing.T) {
	cfg := distReady(t)
	os.WriteFile(filepath.Join(cfg.Paths.Dist, "notes.json"), []byte(`{"unrelated": true}`), 0o644)
	_, _, record := manifest.RootfsFiles(cfg.Paths.Dist, "test")
	os.WriteFile(record, []byte(`{"recipe": "test", "packages": [`), 0o644)
	_, err := Dist(context.Background(), cfg, testLog(t))
	if err == nil || !strings.Contains(err.Error(), "not a readable root filesystem record") || !strings.Contains(err.Error(), "rootfs -recipe=test") {
		t.Fatalf("got %v", err)
	}
}
