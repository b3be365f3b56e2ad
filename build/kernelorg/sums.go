package kernelorg

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/simple-uml/simple-uml/build/fetch"
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
	sums, err := fetch.ParseSums("sha256sums.asc", block.Plaintext)
	if err != nil {
		return nil, nil, err
	}
	return Sums(sums), signer, nil
}

// Lookup returns the sum of one file, or an error wrapping ErrNotListed.
func (s Sums) Lookup(name string) (string, error) {
	sum, ok := s[name]
	if !ok {
		return "", fmt.Errorf("%s: %w; kernel.org lists a release before its checksum is signed: try again later, or pin its sha256", name, ErrNotListed)
	}
	return sum, nil
}
