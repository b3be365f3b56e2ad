package xbps_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"reflect"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/xbps"
	"github.com/simple-uml/simple-uml/build/xbps/xbpstest"
)

func entry(pkgver, arch string, reverts ...string) map[string]any {
	e := map[string]any{"pkgver": pkgver, "architecture": arch, "filename-sha256": strings.Repeat("0", 64)}
	if len(reverts) > 0 {
		e["reverts"] = []any{reverts[0]}
	}
	return e
}

// TestIndexAdd: the newest of a name wins whatever the order, an equal version keeps the first
// ("already registered"), reverts turn the comparison round, other architectures stay out.
func TestIndexAdd(t *testing.T) {
	for _, c := range []struct {
		name    string
		entries []map[string]any
		want    map[string]string // pkgname -> pkgver kept
	}{
		{"newer last", []map[string]any{entry("a-1.0_1", "x86_64"), entry("a-1.10_1", "x86_64")}, map[string]string{"a": "a-1.10_1"}},
		{"newer first", []map[string]any{entry("a-1.0_2", "x86_64"), entry("a-1.0_1", "x86_64")}, map[string]string{"a": "a-1.0_2"}},
		{"equal keeps the first", []map[string]any{entry("a-1.0_1", "noarch"), entry("a-1.0_1", "x86_64")}, map[string]string{"a": "a-1.0_1"}},
		{"a revert wins", []map[string]any{entry("a-2.0_1", "x86_64"), entry("a-1.0_2", "x86_64", "2.0_1")}, map[string]string{"a": "a-1.0_2"}},
		{"a reverted one loses", []map[string]any{entry("a-1.0_2", "x86_64", "2.0_1"), entry("a-2.0_1", "x86_64")}, map[string]string{"a": "a-1.0_2"}},
		{"other architectures out", []map[string]any{entry("a-1.0_1", "aarch64"), entry("b-1.0_1", "noarch"), entry("c-1_1", "x86_64-musl")}, map[string]string{"b": "b-1.0_1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ix := xbps.NewIndex("x86_64")
			for _, e := range c.entries {
				if _, err := ix.Add(e); err != nil {
					t.Fatal(err)
				}
			}
			got := map[string]string{}
			for n, e := range ix.Entries {
				got[n] = e.(map[string]any)["pkgver"].(string)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("kept %v, want %v", got, c.want)
			}
		})
	}
}

func pemOf(t *testing.T, typ string, der []byte, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParsePrivateKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ecDER, ecErr := x509.MarshalECPrivateKey(ec)
	edDER, edErr := x509.MarshalPKCS8PrivateKey(ed)
	pkcs8, p8Err := x509.MarshalPKCS8PrivateKey(rsaKey)
	pubDER, pubErr := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: []byte{1}})
	for _, c := range []struct {
		name string
		pem  []byte
		want string // "" for success
	}{
		{"PKCS#1", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), nil), ""},
		{"PKCS#8", pemOf(t, "PRIVATE KEY", pkcs8, p8Err), ""},
		{"PKCS#1 after text", append([]byte("TEST ONLY\n"), pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey), nil)...), ""},
		{"an EC key", pemOf(t, "EC PRIVATE KEY", ecDER, ecErr), "RSA only"},
		{"an EC key after its parameters", append(pemOf(t, "EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}, nil), pemOf(t, "EC PRIVATE KEY", ecDER, ecErr)...), "RSA only"},
		{"an Ed25519 key", pemOf(t, "PRIVATE KEY", edDER, edErr), "Ed25519 key: xbps signs with RSA only"},
		{"an encrypted key", encrypted, "openssl pkey"},
		{"a public key", pemOf(t, "PUBLIC KEY", pubDER, pubErr), "no PEM private key"},
		{"an OpenSSH key", pemOf(t, "OPENSSH PRIVATE KEY", []byte("openssh-key-v1"), nil), "ssh-keygen -p -m PEM"},
		{"a small key", pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small), nil), "2048 bits or more"},
		{"not PEM", []byte("ssh-rsa AAAA..."), "openssl genrsa"},
		{"a damaged key", pemOf(t, "RSA PRIVATE KEY", []byte{0x30, 1, 2}, nil), "private key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := xbps.ParsePrivateKey(c.pem)
			switch {
			case c.want == "" && (err != nil || k.N.Cmp(rsaKey.N) != 0):
				t.Errorf("got %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// TestSignedPackageVerifies: what SignPackage and IndexEntry make, VerifyPackage accepts, and a
// package changed by one byte it refuses.
func TestSignedPackageVerifies(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := xbpstest.Build(xbpstest.Package{Pkgver: "a-1.0_1", Files: map[string]xbpstest.File{"./usr/bin/a": {Data: []byte("a"), Mode: 0o755}}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := xbps.IndexEntry(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if e["filename-sha256"] != hex.EncodeToString(sum[:]) || e["filename-size"] != uint64(len(data)) {
		t.Errorf("filename-sha256 %v, filename-size %v", e["filename-sha256"], e["filename-size"])
	}
	for _, k := range []string{"pkgname", "version", "packaged-with"} {
		if _, ok := e[k]; ok {
			t.Errorf("the index entry keeps %s", k)
		}
	}
	sig, err := xbps.SignPackage(key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	p, err := xbps.PackageFromProps(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := xbps.VerifyPackage(p, int64(len(data)), sum[:], &key.PublicKey, xbps.Signatures{Sig2: sig}, false); err != nil {
		t.Error(err)
	}
	data[len(data)/2] ^= 1
	bad := sha256.Sum256(data)
	if err := xbps.VerifySignature(&key.PublicKey, xbps.Sig2, bad[:], sig); err == nil {
		t.Error("a changed package verifies")
	}
}
