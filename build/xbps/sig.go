package xbps

import (
	"crypto"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
)

// SigKind says which signature file accompanies a package.
type SigKind string

const (
	Sig2      SigKind = ".sig2" // RSA PKCS#1 v1.5, SHA-256 DigestInfo over sha256(file)
	LegacySig SigKind = ".sig"  // the same digest wrapped in a SHA-1 DigestInfo (xbps < 0.60)
)

// legacyPrefix is the SHA-1 DigestInfo DER header that legacy .sig files put around the SHA-256.
var legacyPrefix, _ = hex.DecodeString("302d300906052b0e03021a05000420")

// ErrBadSignature means the signature does not verify with the repository's key.
var ErrBadSignature = errors.New("signature does not verify with the repository key")

// VerifySignature checks a package signature given the SHA-256 of the whole .xbps file.
func VerifySignature(pub *rsa.PublicKey, kind SigKind, fileSHA256 []byte, sig []byte) error {
	if len(fileSHA256) != 32 {
		return fmt.Errorf("want a 32-byte SHA-256, got %d bytes", len(fileSHA256))
	}
	var err error
	switch kind {
	case Sig2:
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, fileSHA256, sig)
	case LegacySig:
		err = rsa.VerifyPKCS1v15(pub, 0, append(append([]byte{}, legacyPrefix...), fileSHA256...), sig)
	default:
		return fmt.Errorf("unknown signature kind %q", kind)
	}
	if err != nil {
		return ErrBadSignature
	}
	return nil
}

// PackageError names the package a verification failed for.
type PackageError struct {
	Pkgver string
	Err    error
}

func (e *PackageError) Error() string { return e.Pkgver + ": " + e.Err.Error() }
func (e *PackageError) Unwrap() error { return e.Err }

// ErrUnsigned means a signed repository's package has no signature the policy accepts.
var ErrUnsigned = errors.New("no signature: the repository is signed, so every package must be")

// Signatures holds a package's signature files; nil means the file is absent.
type Signatures struct {
	Sig2, Legacy []byte
}

// VerifyPackage checks a downloaded package against its index entry: size, SHA-256 and, when the
// repository has a key (pub != nil), its .sig2 signature, or its legacy .sig when allowLegacy is set.
func VerifyPackage(p *Package, size int64, fileSHA256 []byte, pub *rsa.PublicKey, sigs Signatures, allowLegacy bool) error {
	fail := func(err error) error { return &PackageError{Pkgver: p.Pkgver, Err: err} }
	if p.FilenameSize != 0 && uint64(size) != p.FilenameSize {
		return fail(fmt.Errorf("size %d differs from the index's %d", size, p.FilenameSize))
	}
	if got := hex.EncodeToString(fileSHA256); got != p.FilenameSHA256 {
		return fail(fmt.Errorf("sha256 %s differs from the index's %s", got, p.FilenameSHA256))
	}
	if pub == nil {
		return nil
	}
	switch {
	case sigs.Sig2 != nil:
		if err := VerifySignature(pub, Sig2, fileSHA256, sigs.Sig2); err != nil {
			return fail(fmt.Errorf(".sig2: %w", err))
		}
	case sigs.Legacy != nil && allowLegacy:
		if err := VerifySignature(pub, LegacySig, fileSHA256, sigs.Legacy); err != nil {
			return fail(fmt.Errorf(".sig: %w", err))
		}
	case sigs.Legacy != nil:
		return fail(errors.New("only a legacy .sig signature (xbps < 0.60); set allow_legacy_sig in the recipe's repository to accept it"))
	default:
		return fail(ErrUnsigned)
	}
	return nil
}
