package xbps

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
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

// SignPackage makes a package's .sig2, as xbps-rindex --sign-pkg does (bin/xbps-rindex/sign.c:
// RSA_sign with NID_sha256): RSA PKCS#1 v1.5 over the SHA-256 of the whole .xbps file. It is
// deterministic: the same key and file give the same bytes.
func SignPackage(key *rsa.PrivateKey, fileSHA256 []byte) ([]byte, error) {
	if len(fileSHA256) != 32 {
		return nil, fmt.Errorf("want a 32-byte SHA-256, got %d bytes", len(fileSHA256))
	}
	return rsa.SignPKCS1v15(nil, key, crypto.SHA256, fileSHA256)
}

// ParsePrivateKey reads an RSA private key in PEM, PKCS#1 ("RSA PRIVATE KEY", what openssl genrsa
// -traditional and ssh-keygen -m PEM write) or PKCS#8 ("PRIVATE KEY", openssl genrsa's default), as
// xbps-rindex reads --privkey. Encrypted keys are refused, with how to decrypt them.
func ParsePrivateKey(pemText []byte) (*rsa.PrivateKey, error) {
	var blk *pem.Block
	for rest := pemText; ; {
		blk, rest = pem.Decode(rest)
		if blk == nil || strings.HasSuffix(blk.Type, "PRIVATE KEY") {
			break
		}
	}
	switch {
	case blk == nil:
		return nil, errors.New("no PEM private key: want an RSA private key, e.g. from openssl genrsa -out key.pem 4096")
	case blk.Type == "ENCRYPTED PRIVATE KEY" || blk.Headers["Proc-Type"] == "4,ENCRYPTED":
		return nil, errors.New("the key is encrypted: write a decrypted copy with openssl pkey -in key.pem -out plain.pem, and keep it private")
	case blk.Type == "EC PRIVATE KEY":
		return nil, errors.New("an EC key: xbps signs with RSA only; make one with openssl genrsa -out key.pem 4096")
	case blk.Type == "OPENSSH PRIVATE KEY":
		return nil, errors.New("an OpenSSH key file: convert it to PEM with ssh-keygen -p -m PEM -f <copy of the key>")
	}
	var key any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("a PEM %q block: want an RSA private key, e.g. from openssl genrsa -out key.pem 4096", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("a %s key: xbps signs with RSA only; make one with openssl genrsa -out key.pem 4096", keyKind(key))
	}
	if rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("an RSA key of %d bits: use 2048 bits or more (openssl genrsa -out key.pem 4096)", rk.N.BitLen())
	}
	return rk, nil
}

func keyKind(k any) string {
	switch k.(type) {
	case *ecdsa.PrivateKey:
		return "ECDSA"
	case ed25519.PrivateKey:
		return "Ed25519"
	case *ecdh.PrivateKey:
		return "X25519/ECDH"
	}
	return fmt.Sprintf("%T", k)
}

// PublicKeyPEM is the public key as xbps stores it in index-meta.plist and its keys folder:
// "-----BEGIN PUBLIC KEY-----" PEM of the SubjectPublicKeyInfo, as OpenSSL's PEM_write_bio_RSA_PUBKEY
// writes it.
func PublicKeyPEM(pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
