package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/digest"
)

// server serves one file, with Range support, and can cut the first responses off half-way or fail
// them with a status code.
type server struct {
	mu       sync.Mutex
	data     []byte
	cutFirst int // number of GETs to cut off half-way
	failWith []int
	ranges   []string
	gets     int
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if r.Method == http.MethodGet {
		s.gets++
		s.ranges = append(s.ranges, r.Header.Get("Range"))
	}
	var status int
	if r.Method == http.MethodGet && len(s.failWith) > 0 {
		status, s.failWith = s.failWith[0], s.failWith[1:]
	}
	cut := r.Method == http.MethodGet && s.cutFirst > 0
	if cut {
		s.cutFirst--
	}
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, "injected", status)
		return
	}
	if cut {
		w.Header().Set("Content-Length", "1048576")
		w.Header().Set("Accept-Ranges", "bytes")
		w.Write(s.data[:len(s.data)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drop the connection mid-body
	}
	http.ServeContent(w, r, "file", time.Time{}, bytes.NewReader(s.data))
}

func payload() ([]byte, string) {
	data := bytes.Repeat([]byte("simple-uml kernel bytes "), (1<<20)/24+1)[:1<<20]
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:])
}

func TestFileResumesAfterCutOff(t *testing.T) {
	data, sum := payload()
	srv := &server{data: data, cutFirst: 1}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c := &Cache{Dir: t.TempDir(), Attempts: 1, Log: io.Discard}

	if _, err := c.File(context.Background(), ts.URL+"/linux.tar.xz", sum); err == nil {
		t.Fatal("first run: the cut-off download reported success")
	}
	if _, err := os.Stat(c.Path(sum)); err == nil {
		t.Fatal("an incomplete download entered the cache")
	}
	path, err := c.File(context.Background(), ts.URL+"/linux.tar.xz", sum)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, data) {
		t.Fatal("resumed file differs from the original")
	}
	if last := srv.ranges[len(srv.ranges)-1]; last != "bytes=524288-" {
		t.Errorf("second run sent Range %q, want a resume from the half-way point", last)
	}
	// A third run is served from the cache.
	before := srv.gets
	if _, err := c.File(context.Background(), ts.URL+"/linux.tar.xz", sum); err != nil || srv.gets != before {
		t.Errorf("cached file downloaded again (err %v)", err)
	}
}

func TestFileRetriesServerErrors(t *testing.T) {
	data, sum := payload()
	tests := []struct {
		name     string
		failWith []int
		wantErr  string
		wantGets int
	}{
		{"502 then success", []int{502}, "", 2},
		{"429 then success", []int{429}, "", 2},
		{"404 is final", []int{404, 404, 404}, "404", 1},
		{"503 until attempts run out", []int{503, 503, 503}, "503", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &server{data: data, failWith: tt.failWith}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			c := &Cache{Dir: t.TempDir(), Attempts: 3, Backoff: time.Millisecond, Log: io.Discard}
			_, err := c.File(context.Background(), ts.URL+"/f", sum)
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if srv.gets != tt.wantGets {
				t.Errorf("%d GETs, want %d", srv.gets, tt.wantGets)
			}
		})
	}
}

func TestFileRejectsTamperedDownload(t *testing.T) {
	data, sum := payload()
	tampered := append([]byte(nil), data...)
	tampered[len(tampered)/3] ^= 1
	ts := httptest.NewServer(&server{data: tampered})
	defer ts.Close()
	c := &Cache{Dir: t.TempDir(), Attempts: 1, Log: io.Discard}
	_, err := c.File(context.Background(), ts.URL+"/linux.tar.xz", sum)
	var mm *MismatchError
	if !errors.As(err, &mm) || mm.Want != sum {
		t.Fatalf("err = %v, want a MismatchError", err)
	}
	entries, _ := os.ReadDir(c.Dir + "/partial")
	cached, _ := os.ReadDir(c.Dir + "/sha256")
	if len(entries)+len(cached) != 0 {
		t.Errorf("tampered bytes kept: %v %v", entries, cached)
	}
}

func TestFileRedownloadsCorruptCacheEntry(t *testing.T) {
	data, sum := payload()
	srv := &server{data: data}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c := &Cache{Dir: t.TempDir(), Log: io.Discard}
	os.MkdirAll(c.Dir+"/sha256", 0o755)
	os.WriteFile(c.Path(sum), []byte("bit rot"), 0o644)
	path, err := c.File(context.Background(), ts.URL+"/f", sum)
	if err != nil || srv.gets != 1 {
		t.Fatalf("err %v, %d GETs", err, srv.gets)
	}
	if got, _ := digest.File(path); got != sum {
		t.Error("corrupt cache entry survived")
	}
}

func TestBytes(t *testing.T) {
	ts := httptest.NewServer(&server{data: []byte("releases"), failWith: []int{500}})
	defer ts.Close()
	c := &Cache{Dir: t.TempDir(), Backoff: time.Millisecond, Log: io.Discard}
	got, err := c.Bytes(context.Background(), ts.URL+"/releases.json", 100)
	if err != nil || string(got) != "releases" {
		t.Fatalf("Bytes = %q, %v", got, err)
	}
	if _, err := c.Bytes(context.Background(), ts.URL+"/releases.json", 3); err == nil {
		t.Error("oversized document accepted")
	}
	f := t.TempDir() + "/key.asc"
	os.WriteFile(f, []byte("key"), 0o644)
	if got, err := c.Bytes(context.Background(), f, 100); err != nil || string(got) != "key" {
		t.Errorf("local file: %q, %v", got, err)
	}
}

func TestFileCancelled(t *testing.T) {
	_, sum := payload()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &Cache{Dir: t.TempDir(), Log: io.Discard}
	if _, err := c.File(ctx, "http://127.0.0.1:1/f", sum); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestAttackCacheLinks: a link planted in the cache, in place of a verified file (pointing at a file
// with the right bytes, which a cache must not trust) or of the partial download, is neither used nor
// written through.
func TestAttackCacheLinks(t *testing.T) {
	data, sum := payload()
	for _, planted := range []string{"sha256/" + sum, "partial/" + sum + ".part"} {
		t.Run(planted, func(t *testing.T) {
			outside := t.TempDir()
			victim := outside + "/victim"
			os.WriteFile(victim, data[:len(data)/2], 0o644) // a partial download would be resumed into it
			if planted == "sha256/"+sum {
				os.WriteFile(victim, data, 0o644) // the right bytes: still not to be trusted
			}
			old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
			os.Chtimes(victim, old, old)
			srv := &server{data: data}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			c := &Cache{Dir: t.TempDir(), Log: io.Discard}
			os.MkdirAll(c.Dir+"/sha256", 0o755)
			os.MkdirAll(c.Dir+"/partial", 0o755)
			if err := os.Symlink(victim, c.Dir+"/"+planted); err != nil {
				t.Fatal(err)
			}
			path, err := c.File(context.Background(), ts.URL+"/f", sum)
			if err != nil || srv.gets != 1 {
				t.Fatalf("err %v, %d GETs: the planted link was used", err, srv.gets)
			}
			if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
				t.Errorf("%s is still a link", path)
			}
			fi, _ := os.Stat(victim)
			if !fi.ModTime().Equal(old) {
				t.Error("the file behind the link was written")
			}
		})
	}
}

// TestHeaderStaysOnTheFirstHost: the cache's Authorization goes to the host asked, not to the host a
// redirect leads to, even on the same address with another port (GitHub's API and storage hosts).
func TestHeaderStaysOnTheFirstHost(t *testing.T) {
	var storageAuth, apiAuth []string
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storageAuth = append(storageAuth, r.Header.Get("Authorization"))
		io.WriteString(w, "payload")
	}))
	defer storage.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiAuth = append(apiAuth, r.Header.Get("Authorization"))
		http.Redirect(w, r, storage.URL+"/blob", http.StatusFound)
	}))
	defer api.Close()
	c := &Cache{Dir: t.TempDir(), Quiet: true, Header: http.Header{"Authorization": {"Bearer secret"}}}
	data, err := c.Bytes(context.Background(), api.URL+"/asset", 1024)
	if err != nil || string(data) != "payload" {
		t.Fatalf("%q %v", data, err)
	}
	sum := sha256.Sum256([]byte("payload"))
	if _, err := c.File(context.Background(), api.URL+"/asset", hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	for _, a := range storageAuth {
		if a != "" {
			t.Errorf("the storage host was sent %q", a)
		}
	}
	if len(apiAuth) < 2 || apiAuth[0] != "Bearer secret" {
		t.Errorf("the API host was sent %q", apiAuth)
	}
}

// TestTokenSafe: a token travels over https, or in clear only to this machine's loopback (tests).
func TestTokenSafe(t *testing.T) {
	for raw, want := range map[string]bool{
		"https://api.github.com/repos/o/r":   true,
		"https://objects.example/blob":       true,
		"http://127.0.0.1:8080/api/v3":       true,
		"http://[::1]:8080/":                 true,
		"http://localhost:1/":                true,
		"http://api.github.com/repos/o/r":    false,
		"http://10.0.0.1/asset":              false,
		"ftp://127.0.0.1/asset":              false,
		"http://127.0.0.1.example.com/asset": false,
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got := TokenSafe(u); got != want {
			t.Errorf("TokenSafe(%s) = %v, want %v", raw, got, want)
		}
	}
}
