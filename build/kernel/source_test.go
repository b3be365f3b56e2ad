package kernel

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
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
