package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"github.com/simple-uml/simple-uml/build/config"
)

// mirror is a loopback kernel.org: pub/linux/kernel/v*.x/ with tarballs and a sha256sums.asc signed by
// a key the test makes, releases.json, and the public key, all over HTTP with Range support.
type mirror struct {
	*httptest.Server
	signer *openpgp.Entity
	mu     sync.Mutex
	files  map[string][]byte // URL path -> content
	hits   map[string]int
	cut    map[string]bool // paths whose next full GET is cut off half-way
	ranges []string        // Range headers received
	stall  chan struct{}   // when set, tarball requests wait for it to close
}

func newMirror(t testing.TB) *mirror {
	t.Helper()
	signer, err := openpgp.NewEntity("Test checksum autosigner", "", "autosigner@test.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &mirror{signer: signer, files: map[string][]byte{}, hits: map[string]int{}, cut: map[string]bool{}}
	var pub bytes.Buffer
	aw, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err := signer.Serialize(aw); err != nil {
		t.Fatal(err)
	}
	aw.Close()
	m.files["/keys/autosigner.asc"] = pub.Bytes()
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		data, ok := m.files[r.URL.Path]
		m.hits[r.URL.Path]++
		cut := r.Method == http.MethodGet && m.cut[r.URL.Path]
		if r.Method == http.MethodGet {
			m.cut[r.URL.Path] = false
			if rg := r.Header.Get("Range"); rg != "" {
				m.ranges = append(m.ranges, rg)
			}
		}
		stall := m.stall
		m.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		if stall != nil && strings.HasSuffix(r.URL.Path, ".tar.xz") {
			select {
			case <-stall:
			case <-r.Context().Done():
			}
			return
		}
		if cut {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection drops mid-body
		}
		http.ServeContent(w, r, filepath.Base(r.URL.Path), time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *mirror) fingerprint() string {
	return strings.ToUpper(hex.EncodeToString(m.signer.PrimaryKey.Fingerprint))
}

func (m *mirror) put(path string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[path] = data
}

func (m *mirror) hitCount(path string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hits[path]
}

// publish serves a tarball under its kernel.org name and a sha256sums.asc, signed by signer, that lists
// the sums given (name -> sha256; the tarball's own sum unless overridden).
func (m *mirror) publish(t testing.TB, version string, tarball []byte, signer *openpgp.Entity, sums map[string]string) {
	t.Helper()
	dir := "/pub/linux/kernel/v" + strings.SplitN(version, ".", 2)[0] + ".x/"
	name := "linux-" + version + ".tar.xz"
	m.put(dir+name, tarball)
	sum := sha256.Sum256(tarball)
	list := map[string]string{"linux-6.1.tar.xz": strings.Repeat("ab", 32), name: hex.EncodeToString(sum[:])}
	for k, v := range sums {
		if v == "" {
			delete(list, k)
		} else {
			list[k] = v
		}
	}
	var text strings.Builder
	for k, v := range list {
		fmt.Fprintf(&text, "%s  %s\n", v, k)
	}
	var signed bytes.Buffer
	w, err := clearsign.Encode(&signed, signer.PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(text.String()))
	w.Close()
	m.put(dir+"sha256sums.asc", signed.Bytes())
}

// testConfig loads the repository's real configuration with the overrides a user would set to use this
// mirror, and private cache and dist directories.
func (m *mirror) testConfig(t testing.TB, version string, extra map[string]string) config.Config {
	t.Helper()
	work := t.TempDir()
	env := map[string]string{
		"SUML_KERNEL_MIRROR":       m.URL + "/pub/linux/kernel",
		"SUML_KERNEL_RELEASES_URL": m.URL + "/releases.json",
		"SUML_KERNEL_KEYS":         m.URL + "/keys/autosigner.asc",
		"SUML_KERNEL_TRUSTED_KEYS": m.fingerprint(),
		"SUML_KERNEL_VERSION":      version,
		"SUML_CACHE":               filepath.Join(work, "cache"),
		"SUML_DIST":                filepath.Join(work, "dist"),
		"HOME":                     work,
	}
	return loadConfig(t, env, extra)
}

// loadConfig loads the repository's real configuration with env (then extra) as the environment.
func loadConfig(t testing.TB, env, extra map[string]string) config.Config {
	t.Helper()
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.Load(repoRoot(t), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func repoRoot(t testing.TB) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, config.FileName)); err != nil {
		t.Fatalf("repository root not found: %v", err)
	}
	return root
}
