package kernelorg

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// Autosigner is the fingerprint of "Kernel.org checksum autosigner <autosigner@kernel.org>", the key
// that signs every sha256sums.asc.
const Autosigner = "B8868C80BA62A1FFFAF5FDA9632D3A06589DA6B1"

// NormalizeFingerprint uppercases a fingerprint and drops spaces and a 0x prefix; it rejects anything
// that is not 40 (v4) or 64 (v6) hex digits, because short key IDs can be forged.
func NormalizeFingerprint(fp string) (string, error) {
	s := strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(strings.TrimSpace(fp), "0x"), " ", ""))
	if _, err := hex.DecodeString(s); err != nil || (len(s) != 40 && len(s) != 64) {
		return "", fmt.Errorf("fingerprint %q: want the full 40 hex digits (gpg --fingerprint shows them)", fp)
	}
	return s, nil
}

// TrustedKeys reads armored or binary public keys and keeps only those whose primary fingerprint is in
// pinned. It fails when a pinned fingerprint is found in none of the inputs, so that a wrong key file is
// noticed at once rather than at the first signature check.
func TrustedKeys(pinned []string, keyData ...[]byte) (openpgp.EntityList, error) {
	want := map[string]bool{}
	for _, fp := range pinned {
		n, err := NormalizeFingerprint(fp)
		if err != nil {
			return nil, err
		}
		want[n] = true
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("no trusted key fingerprints configured: set kernel.trusted_keys (kernel.org's autosigner is %s)", Autosigner)
	}
	var trusted openpgp.EntityList
	found := map[string]bool{}
	var seen []string
	for _, data := range keyData {
		entities, err := readKeys(data)
		if err != nil {
			return nil, err
		}
		for _, e := range entities {
			fp := strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
			seen = append(seen, fp)
			if want[fp] && !found[fp] {
				found[fp] = true
				trusted = append(trusted, e)
			}
		}
	}
	for fp := range want {
		if !found[fp] {
			return nil, fmt.Errorf("trusted key %s is not among the configured keys (found: %s): "+
				"point kernel.keys at a file or URL that holds it", fp, strings.Join(seen, ", "))
		}
	}
	return trusted, nil
}

// readKeys reads binary keys, or any number of armored key blocks one after another (a concatenated
// keyring file is common, and ReadArmoredKeyRing stops after the first block).
func readKeys(data []byte) (openpgp.EntityList, error) {
	if !bytes.Contains(data, []byte("-----BEGIN PGP")) {
		el, err := openpgp.ReadKeyRing(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("read OpenPGP keys: %w", err)
		}
		return el, nil
	}
	var all openpgp.EntityList
	r := bytes.NewReader(data)
	for {
		block, err := armor.Decode(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read armored OpenPGP keys: %w", err)
		}
		if block.Type != openpgp.PublicKeyType {
			continue
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("read armored OpenPGP keys: %w", err)
		}
		all = append(all, el...)
	}
	if len(all) == 0 {
		return nil, errors.New("read armored OpenPGP keys: no public key block found")
	}
	return all, nil
}

// Fingerprints lists the primary fingerprints of a key ring, for messages.
func Fingerprints(keyring openpgp.EntityList) []string {
	out := make([]string, 0, len(keyring))
	for _, e := range keyring {
		out = append(out, strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint)))
	}
	return out
}
