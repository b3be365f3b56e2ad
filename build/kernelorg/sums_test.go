package kernelorg

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// fixtures is the project's shared, read-only test data (real kernel.org files), read in place.
var fixtures = filepath.Join("..", "..", "..", "shared", "fixtures", "kernelorg")

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatalf("shared fixture missing (tests read ../shared in place): %v", err)
	}
	return data
}

func realKeys(t *testing.T) []byte {
	t.Helper()
	var all []byte
	for _, f := range []string{"keys/kernel-org-autosigner.asc", "keys/greg-kroah-hartman.asc", "keys/linus-torvalds.asc"} {
		all = append(all, readFixture(t, f)...)
	}
	return all
}

func TestVerifySumsRealKernelOrgFiles(t *testing.T) {
	keys := realKeys(t)
	trusted, err := TrustedKeys([]string{Autosigner}, keys)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file    string
		entries int
		check   string // a file name and its sum as kernel.org lists it
		sum     string
	}{
		{"v4.x-sha256sums.asc", 815, "linux-4.0.1.tar.xz", "ffb0ad77e954be73b40d06d6b062464e8c29a7cbcbfcb8d52cbbd415ae11f2bd"},
		{"git-small-sha256sums.asc", 12, "git-core-0.99.6.tar.gz", "66774342ec58fe90d50a98879bb92991fda6b858e0a6b24592325a0140725681"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			asc := readFixture(t, tt.file)
			sums, signer, err := VerifySums(asc, trusted)
			if err != nil {
				t.Fatalf("real signed file does not verify: %v", err)
			}
			if got := Fingerprints(openpgp.EntityList{signer})[0]; got != Autosigner {
				t.Errorf("signer %s, want %s", got, Autosigner)
			}
			if len(sums) != tt.entries {
				t.Errorf("%d entries, want %d", len(sums), tt.entries)
			}
			if got, err := sums.Lookup(tt.check); err != nil || got != tt.sum {
				t.Errorf("Lookup(%s) = %s, %v; want %s", tt.check, got, err, tt.sum)
			}
			if _, err := sums.Lookup("linux-9.9.tar.xz"); !errors.Is(err, ErrNotListed) {
				t.Errorf("absent file: err = %v, want ErrNotListed", err)
			}
		})
	}
}

func TestVerifySumsRejectsTampering(t *testing.T) {
	keys := realKeys(t)
	asc := readFixture(t, "v4.x-sha256sums.asc")
	autosigner, err := TrustedKeys([]string{Autosigner}, keys)
	if err != nil {
		t.Fatal(err)
	}
	// Greg's key is real and trusted here, but it did not sign the checksum list.
	greg, err := TrustedKeys([]string{"647F28654894E3BD457199BE38DBBDC86092693E"}, keys)
	if err != nil {
		t.Fatal(err)
	}
	oneDigit := bytes.Replace(asc, []byte("ffb0ad77e954be73b40d06d6b062464e8c29a7cbcbfcb8d52cbbd415ae11f2bd"),
		[]byte("ffb0ad77e954be73b40d06d6b062464e8c29a7cbcbfcb8d52cbbd415ae11f2be"), 1)
	if bytes.Equal(oneDigit, asc) {
		t.Fatal("test setup: line to change not found")
	}
	addedLine := bytes.Replace(asc, []byte("Hash: SHA256\n\n"),
		[]byte("Hash: SHA256\n\n0000000000000000000000000000000000000000000000000000000000000000  linux-4.0.tar.xz\n"), 1)
	tests := []struct {
		name    string
		asc     []byte
		keyring openpgp.EntityList
		want    string
	}{
		{"one changed digit", oneDigit, autosigner, "signature does not verify"},
		{"added line", addedLine, autosigner, "signature does not verify"},
		{"untrusted signer", asc, greg, "647F28654894E3BD457199BE38DBBDC86092693E"},
		{"not clearsigned", []byte("d86e  linux-4.0.tar.gz\n"), autosigner, "not an OpenPGP clearsigned message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := VerifySums(tt.asc, tt.keyring)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestTrustedKeys(t *testing.T) {
	keys := realKeys(t)
	tests := []struct {
		name    string
		pinned  []string
		want    int
		wantErr string
	}{
		{"one pinned", []string{Autosigner}, 1, ""},
		{"spaces and lower case", []string{"b886 8c80 ba62 a1ff faf5  fda9 632d 3a06 589d a6b1"}, 1, ""},
		{"two pinned", []string{Autosigner, "ABAF11C65A2970B130ABE3C479BE3E4300411886"}, 2, ""},
		{"short key id refused", []string{"632D3A06589DA6B1"}, 0, "full 40 hex digits"},
		{"pinned key absent", []string{"0000000000000000000000000000000000000000"}, 0, "is not among the configured keys"},
		{"nothing pinned", nil, 0, "no trusted key fingerprints"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TrustedKeys(tt.pinned, keys)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("got %d keys, err %v; want %d", len(got), err, tt.want)
			}
		})
	}
}
