package kernel

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/config"
)

func TestLocalSHA256RemembersUnchangedFiles(t *testing.T) {
	dir := t.TempDir()
	tarball := filepath.Join(dir, "linux.tar.xz")
	memoDir := filepath.Join(dir, "verified")
	sumOf := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

	os.WriteFile(tarball, []byte("first content"), 0o644)
	got, err := localSHA256(tarball, memoDir)
	if err != nil || got != sumOf("first content") {
		t.Fatalf("first hash = %s, %v", got, err)
	}
	memos, _ := filepath.Glob(filepath.Join(memoDir, "local-*.json"))
	if len(memos) != 1 {
		t.Fatalf("digest not remembered: %v", memos)
	}
	if again, err := localSHA256(tarball, memoDir); err != nil || again != got {
		t.Fatalf("remembered hash = %s, %v", again, err)
	}
	// Same size, new content and time: the file must be read again.
	os.WriteFile(tarball, []byte("other content"), 0o644)
	later := time.Now().Add(time.Minute)
	os.Chtimes(tarball, later, later)
	if changed, err := localSHA256(tarball, memoDir); err != nil || changed != sumOf("other content") {
		t.Fatalf("rewritten file: hash %s, %v", changed, err)
	}
}

// TestResolveUnpinnedSeries: a series kernel.lock does not pin is refused before anything is
// downloaded, with the series it pins.
func TestResolveUnpinnedSeries(t *testing.T) {
	cfg := config.Config{Kernel: config.Kernel{Series: "9.9"}, DefaultSeries: "6.12",
		OtherPins: map[string]config.KernelPin{"6.6": {Version: "6.6.60"}}}
	_, err := Resolve(context.Background(), cfg, nil, io.Discard)
	if want := `unknown series "9.9" in kernel.lock: 6.12, 6.6`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q", err, want)
	}
}
