// Package digest is how simple-uml names content: the lowercase hex SHA-256 of bytes, a file, a
// stream, or a value's JSON (the input keys of stages and releases). Verified downloads, records,
// SHA256SUMS and input keys all use it, so one digest means one thing everywhere.
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Bytes is the digest of data.
func Bytes(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// File is the digest of a file's content.
func File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum, err := Reader(f)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return sum, nil
}

// Reader is the digest of what r holds, read to its end.
func Reader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// JSON is the digest of v's JSON encoding: Go encodes struct fields in their order and map keys
// sorted, so equal values have equal digests. v must be encodable (records and keys are).
func JSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("digest.JSON of %T: %v", v, err)) // a programming error: keys are plain data
	}
	return Bytes(data)
}
