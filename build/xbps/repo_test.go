package xbps

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtures are real Void repositories (../shared/fixtures/xbps), read in place.
var fixtures = filepath.Join("..", "..", "..", "shared", "fixtures", "xbps")

type fixtureRepo struct {
	dir         string
	arch        string
	compression string
	fingerprint string // "" for unsigned
	entries     int
	sig         SigKind // signature files the packages carry
	legacyOK    bool
}

var fixtureRepos = []fixtureRepo{
	{"Encoded14-void-user-repository/x86_64", "x86_64", "zstd", "1d:c2:cf:d4:08:97:4c:47:5d:88:4c:fd:e9:a5:d0:9a", 27, Sig2, false},
	{"Encoded14-void-user-repository/x86_64-musl", "x86_64-musl", "zstd", "1d:c2:cf:d4:08:97:4c:47:5d:88:4c:fd:e9:a5:d0:9a", -1, Sig2, false},
	{"Toasterbirb-void-repo", "x86_64", "zstd", "28:d6:96:4c:b4:33:3e:ea:c1:10:cf:4d:0d:1e:68:7e", -1, LegacySig, true},
	{"Gigahawk-xbps_libselinux", "x86_64", "gzip", "", -1, "", false},
	{"Zoomers-in-Void-bins", "x86_64", "zstd", "33:68:15:81:00:d5:c3:18:b6:8a:b7:4f:e4:ce:39:bf", -1, "", false},
}

func loadFixture(t testing.TB, dir, arch string) *Repodata {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtures, dir, arch+"-repodata"))
	if err != nil {
		t.Fatalf("shared fixture missing (tests read ../shared in place): %v", err)
	}
	defer f.Close()
	rd, err := ReadRepodata(f)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return rd
}

func publicKey(t testing.TB, rd *Repodata) *rsa.PublicKey {
	t.Helper()
	if rd.Meta == nil {
		return nil
	}
	k, err := ParsePublicKey(rd.Meta.PublicKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func readSigs(file string) Signatures {
	var s Signatures
	s.Sig2, _ = os.ReadFile(file + ".sig2")
	s.Legacy, _ = os.ReadFile(file + ".sig")
	return s
}

// TestFixtureRepositories reads every real repository and verifies every package file it has.
func TestFixtureRepositories(t *testing.T) {
	for _, fr := range fixtureRepos {
		t.Run(fr.dir, func(t *testing.T) {
			rd := loadFixture(t, fr.dir, fr.arch)
			if rd.Compression != fr.compression {
				t.Errorf("compression %s, want %s", rd.Compression, fr.compression)
			}
			if fr.entries >= 0 && len(rd.Index) != fr.entries {
				t.Errorf("%d index entries, want %d", len(rd.Index), fr.entries)
			}
			pub := publicKey(t, rd)
			if fr.fingerprint == "" {
				if rd.Signed() {
					t.Fatal("unsigned repository read as signed")
				}
			} else if got := Fingerprint(pub); got != fr.fingerprint {
				t.Fatalf("fingerprint %s, want %s", got, fr.fingerprint)
			}
			verified := 0
			for _, name := range Names(rd.Index) {
				p := rd.Index[name]
				if p.Arch != fr.arch && p.Arch != "noarch" {
					t.Errorf("%s: architecture %q", p.Pkgver, p.Arch)
				}
				if p.FilenameSize == 0 || len(p.FilenameSHA256) != 64 || p.InstalledSize == 0 || p.ShortDesc == "" {
					t.Errorf("%s: index fields missing: %+v", p.Pkgver, p)
				}
				file := filepath.Join(fixtures, fr.dir, p.Pkgver+"."+p.Arch+".xbps")
				data, err := os.ReadFile(file)
				if errors.Is(err, os.ErrNotExist) {
					continue // index-only entry: the fixture README says its file was not kept
				}
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(data)
				sigs := readSigs(file)
				err = VerifyPackage(p, int64(len(data)), sum[:], pub, sigs, fr.legacyOK)
				if fr.sig == "" && pub != nil {
					// Zoomers: a signed repository whose package has no signature file.
					if !errors.Is(err, ErrUnsigned) || !strings.Contains(err.Error(), p.Pkgver) {
						t.Errorf("%s: want an unsigned-package error naming it, got %v", p.Pkgver, err)
					}
					if err := VerifyPackage(p, int64(len(data)), sum[:], nil, sigs, false); err != nil {
						t.Errorf("%s: size/sha256: %v", p.Pkgver, err)
					}
				} else if err != nil {
					t.Errorf("%s: %v", p.Pkgver, err)
				}
				if fr.sig == LegacySig {
					if err := VerifyPackage(p, int64(len(data)), sum[:], pub, sigs, false); err == nil || !strings.Contains(err.Error(), "allow_legacy_sig") {
						t.Errorf("%s: a legacy .sig must be refused unless allowed, got %v", p.Pkgver, err)
					}
				}
				root := t.TempDir()
				r, err := os.OpenRoot(root)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				c, err := Unpack(context.Background(), bytes.NewReader(data), r)
				if err != nil {
					t.Fatalf("%s: unpack: %v", p.Pkgver, err)
				}
				if c.Package.Pkgver != p.Pkgver {
					t.Errorf("props.plist pkgver %s, index %s", c.Package.Pkgver, p.Pkgver)
				}
				if len(c.FilesPlist) == 0 || len(c.Paths) == 0 {
					t.Errorf("%s: files.plist %d bytes, %d payload entries", p.Pkgver, len(c.FilesPlist), len(c.Paths))
				}
				for _, pth := range c.Paths {
					if _, err := os.Lstat(filepath.Join(root, pth)); err != nil {
						t.Errorf("%s: %v", p.Pkgver, err)
					}
				}
				verified++
			}
			if verified == 0 {
				t.Fatal("no package file verified")
			}
		})
	}
}

func TestStageAndMeta(t *testing.T) {
	rd := loadFixture(t, "Encoded14-void-user-repository/x86_64", "x86_64")
	if rd.Stage == nil || len(rd.Stage) != 0 {
		t.Errorf("stage.plist: %v, want present and empty", rd.Stage)
	}
	if rd.Meta.PublicKeySize != 2048 || rd.Meta.SignatureBy == "" || rd.Meta.SignatureType != "rsa" {
		t.Errorf("meta: %+v", rd.Meta)
	}
	ly := rd.Index["ly"]
	if ly == nil || len(ly.ConfFiles) == 0 || ly.ConfFiles[0] != "/etc/ly/config.ini" {
		t.Errorf("ly conf_files: %+v", ly)
	}
	old := loadFixture(t, "Toasterbirb-void-repo", "x86_64")
	if old.Stage != nil {
		t.Error("pre-0.60 repository has no stage.plist")
	}
}

func TestTamperedPackages(t *testing.T) {
	dir := filepath.Join(fixtures, "Encoded14-void-user-repository/x86_64")
	rd := loadFixture(t, "Encoded14-void-user-repository/x86_64", "x86_64")
	pub := publicKey(t, rd)
	p := rd.Index["glaze"]
	file := filepath.Join(dir, p.Pkgver+".x86_64.xbps")
	data, _ := os.ReadFile(file)
	sigs := readSigs(file)
	other := loadFixture(t, "Toasterbirb-void-repo", "x86_64")
	otherKey := publicKey(t, other)

	flipped := append([]byte{}, data...)
	flipped[len(flipped)/2] ^= 1
	idx := *p
	idx.FilenameSHA256 = strings.Repeat("0", 64)
	cases := []struct {
		name string
		pkg  *Package
		data []byte
		pub  *rsa.PublicKey
		sigs Signatures
		want string
	}{
		{"flipped byte", p, flipped, pub, sigs, "differs from the index"},
		{"index sha256 disagrees", &idx, data, pub, sigs, "differs from the index"},
		{"signature from another key", p, data, otherKey, sigs, "does not verify"},
		{"signature of another package", p, data, pub, readSigs(filepath.Join(dir, "hyprlang-0.6.4_2.x86_64.xbps")), "does not verify"},
		{"missing signature", p, data, pub, Signatures{}, "no signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sum := sha256.Sum256(c.data)
			err := VerifyPackage(c.pkg, int64(len(c.data)), sum[:], c.pub, c.sigs, false)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p.Pkgver) {
				t.Fatalf("got %v, want an error naming %s and %q", err, p.Pkgver, c.want)
			}
		})
	}
}
