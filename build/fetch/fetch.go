// Package fetch downloads files into a cache addressed by their sha256, with grab doing resumption
// (a cut-off download continues from where it stopped on the next attempt or run), retries with
// backoff, and progress on a terminal. A file enters the cache only after its digest matched, and is
// checked again when it is taken out, so a corrupted cache is caught rather than used.
//
// Every path the cache builds comes from a digest checked by ident.SHA256, so no index or manifest can
// name a file outside Dir; files are opened and renamed through an os.Root of Dir.
//
// Limits: digests are sha256 only.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cavaliergopher/grab/v3"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/lock"
	"github.com/simple-uml/simple-uml/build/retry"
	"github.com/simple-uml/simple-uml/build/ui"
)

// Cache is a content-addressed download cache.
type Cache struct {
	Dir      string        // root; verified files live in Dir/sha256/<hex>, partial ones in Dir/partial, locks in Dir/locks
	Attempts int           // tries per download, at least 1; 0 means 4
	Backoff  time.Duration // wait before the first retry, doubled for each further one; 0 means 1s
	Log      io.Writer     // where retries are reported; nil means os.Stderr
	HTTP     *http.Client  // nil means http.DefaultClient
	Quiet    bool          // no per-file progress line (callers downloading in parallel show their own)
	// Header is sent with every request (the GitHub API's Accept and Authorization for a release's
	// assets). Authorization goes to the first host only: a redirect to another host or port
	// (GitHub's storage host) is followed without it.
	Header http.Header
}

// client is the HTTP client for one request: c.HTTP, with redirects that drop Authorization when
// they leave the first host.
func (c *Cache) client() *http.Client {
	base := c.HTTP
	if base == nil {
		base = http.DefaultClient
	}
	hc := *base
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if req.URL.Host != via[0].URL.Host || !TokenSafe(req.URL) {
			req.Header.Del("Authorization")
		}
		return nil
	}
	return &hc
}

// TokenSafe says whether a token may travel to u: over https, or plain http to this machine's
// loopback (a test's server), never in clear across a network.
func TokenSafe(u *url.URL) bool {
	if u.Scheme == "https" {
		return true
	}
	if u.Scheme != "http" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(u.Hostname())
	return err == nil && ip.IsLoopback()
}

// setHeader adds the cache's headers to a request.
func (c *Cache) setHeader(h http.Header) {
	for k, vs := range c.Header {
		h[k] = append([]string(nil), vs...)
	}
	h.Set("User-Agent", "simple-uml")
}

// MismatchError is a download whose sha256 differs from the one it was expected to have.
type MismatchError struct {
	URL       string
	Want, Got string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s: sha256 is %s, expected %s: the file is corrupt or has been tampered with, "+
		"and was deleted; if the mirror is trustworthy and the expected digest is stale, re-pin with `go tool mage bump`",
		e.URL, e.Got, e.Want)
}

// Path is where a verified file with the given sha256 is kept.
func (c *Cache) Path(sha string) string { return filepath.Join(c.Dir, "sha256", sha) }

// File returns the path of a cached file with sha256 want, downloading it from url first if needed.
func (c *Cache) File(ctx context.Context, url, want string) (string, error) {
	if err := ident.SHA256(want); err != nil {
		return "", fmt.Errorf("fetch %s: %w; nothing was read or written", url, err)
	}
	for _, d := range []string{"sha256", "partial"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			return "", err
		}
	}
	root, err := os.OpenRoot(c.Dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	final, partial := "sha256/"+want, "partial/"+want+".part"
	if got, err := rootSHA256(root, final); err == nil {
		if got == want {
			return c.Path(want), nil
		}
		// Bit rot or tampering in the cache: drop it and download again.
		fmt.Fprintf(c.log(), "cached %s has sha256 %s, expected %s; downloading again\n", c.Path(want), got, want)
		_ = root.Remove(final)
	}
	// Runs with different caches may share this download folder: one downloads, the others wait and
	// then find the verified file.
	l, err := lock.Acquire(ctx, filepath.Join(c.Dir, "locks", want), "download "+url, c.log())
	if err != nil {
		return "", err
	}
	defer l.Release()
	if got, err := rootSHA256(root, final); err == nil && got == want {
		return c.Path(want), nil
	}
	// grab writes by path (made of the checked digest, under folders made above): whatever is there
	// that is not a partial download of ours goes first, so that no link is written through.
	if fi, err := root.Lstat(partial); err == nil && !fi.Mode().IsRegular() {
		if err := root.Remove(partial); err != nil {
			return "", err
		}
	}
	err = c.retry(ctx, url, func() error { return c.grab(ctx, url, filepath.Join(c.Dir, partial)) })
	if err != nil {
		return "", err
	}
	got, err := rootSHA256(root, partial)
	if err != nil {
		return "", err
	}
	if got != want {
		_ = root.Remove(partial)
		return "", &MismatchError{URL: url, Want: want, Got: got}
	}
	if err := root.Rename(partial, final); err != nil {
		return "", fmt.Errorf("fetch %s: %w", url, err)
	}
	return c.Path(want), nil
}

// rootSHA256 hashes a regular file of the cache (never what a link there points to).
func rootSHA256(root *os.Root, name string) (string, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s in the cache is not a regular file", name)
	}
	f, err := root.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return digest.Reader(f)
}

func (c *Cache) grab(ctx context.Context, url, dst string) error {
	req, err := grab.NewRequest(dst, url)
	if err != nil {
		return retry.Permanent(err)
	}
	req = req.WithContext(ctx)
	req.IgnoreRemoteTime = true
	c.setHeader(req.HTTPRequest.Header)
	client := grab.NewClient()
	client.HTTPClient = c.client()
	client.UserAgent = "simple-uml"
	resp := client.Do(req)
	progress := &ui.Progress{}
	if !c.Quiet {
		progress = ui.NewProgress("download " + filepath.Base(url))
	}
	defer progress.Done()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			progress.Update(resp.BytesComplete(), resp.Size())
		case <-resp.Done:
			err := resp.Err()
			var status grab.StatusCodeError
			if errors.As(err, &status) && int(status) < 500 && int(status) != http.StatusTooManyRequests {
				return retry.Permanent(err)
			}
			if errors.Is(err, grab.ErrBadLength) {
				// The partial file is longer than the remote one: it cannot be resumed.
				_ = os.Remove(dst)
			}
			return err
		}
	}
}

// Bytes reads a small document from an http(s) URL (with retries) or from a local file path, at most
// max bytes. It is for documents that are verified by other means (signatures) or not at all.
func (c *Cache) Bytes(ctx context.Context, src string, max int64) ([]byte, error) {
	if !IsURL(src) {
		data, err := os.ReadFile(strings.TrimPrefix(src, "file://"))
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > max {
			return nil, fmt.Errorf("%s: larger than %d bytes", src, max)
		}
		return data, nil
	}
	var data []byte
	err := c.retry(ctx, src, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return retry.Permanent(err)
		}
		c.setHeader(req.Header)
		resp, err := c.client().Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err := fmt.Errorf("HTTP %s", resp.Status)
			if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
				// Callers tell "absent" from "failed" with errors.Is(err, fs.ErrNotExist), as for files.
				err = fmt.Errorf("HTTP %s: %w", resp.Status, fs.ErrNotExist)
			}
			if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
				return retry.Permanent(err)
			}
			return err
		}
		data, err = io.ReadAll(io.LimitReader(resp.Body, max+1))
		if err != nil {
			return err
		}
		if int64(len(data)) > max {
			return retry.Permanent(fmt.Errorf("larger than %d bytes", max))
		}
		return nil
	})
	return data, err
}

// IsURL reports whether src is fetched over HTTP(S) rather than read as a local path.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// retry calls f until it succeeds, fails permanently, the context ends or the attempts run out.
func (c *Cache) retry(ctx context.Context, url string, f func() error) error {
	policy := retry.Policy{Attempts: c.Attempts, Backoff: c.Backoff, Log: func(err error, wait time.Duration, i, n int) {
		fmt.Fprintf(c.log(), "download %s failed (%v); retrying in %s (%d/%d)\n", url, err, wait, i, n-1)
	}}
	if policy.Attempts <= 0 {
		policy.Attempts = 4
	}
	if policy.Backoff <= 0 {
		policy.Backoff = time.Second
	}
	err := policy.Do(ctx, f)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("download %s: %w", url, ctx.Err())
	}
	return fmt.Errorf("download %s: %w (check the mirror setting and your network; a rerun resumes the download)", url, err)
}

func (c *Cache) log() io.Writer {
	if c.Log == nil {
		return os.Stderr
	}
	return c.Log
}
