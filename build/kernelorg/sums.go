package kernelorg

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// ErrNotListed means a signed checksum list verified but has no line for the file asked about. For a
// fresh release this usually means kernel.org has not published its checksum yet: try again later.
var ErrNotListed = errors.New("not listed in sha256sums.asc")

// Sums maps a file name to its lowercase hex sha256.
type Sums map[string]string

// VerifySums checks the OpenPGP clearsignature of a sha256sums.asc against keyring (which must hold only
// trusted keys) and returns the checksums of the signed text. Nothing outside the signed text is read.
func VerifySums(asc []byte, keyring openpgp.EntityList) (Sums, *openpgp.Entity, error) {
	block, _ := clearsign.Decode(asc)
	if block == nil {
		return nil, nil, errors.New("sha256sums.asc: not an OpenPGP clearsigned message")
	}
	signer, err := block.VerifySignature(keyring, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("sha256sums.asc: signature does not verify against the trusted keys (%s): %w",
			strings.Join(Fingerprints(keyring), ", "), err)
	}
	sums, err := ParseSums(block.Plaintext)
	if err != nil {
		return nil, nil, err
	}
	return sums, signer, nil
}

// ParseSums reads "<sha256>  <file>" lines as sha256sum writes them. Blank lines are skipped; any other
// malformed line is an error, since the list is signed and should be exact.
func ParseSums(text []byte) (Sums, error) {
	sums := Sums{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			sum, name, ok = strings.Cut(line, " *")
		}
		if !ok || len(sum) != 64 || name == "" || strings.ContainsAny(name, "/\x00") {
			return nil, fmt.Errorf("sha256sums line %d: want \"<sha256>  <file>\", got %q", n, line)
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("sha256sums line %d: %q is not hex", n, sum)
		}
		sum = strings.ToLower(sum)
		if prev, dup := sums[name]; dup && prev != sum {
			return nil, fmt.Errorf("sha256sums line %d: %s listed twice with different sums", n, name)
		}
		sums[name] = sum
	}
	return sums, sc.Err()
}

// Lookup returns the sum of one file, or an error wrapping ErrNotListed.
func (s Sums) Lookup(name string) (string, error) {
	sum, ok := s[name]
	if !ok {
		return "", fmt.Errorf("%s: %w; kernel.org lists a release before its checksum is signed: try again later, or pin its sha256", name, ErrNotListed)
	}
	return sum, nil
}
