package kconf

import (
	"os"
	"strings"
	"testing"
)

func TestChanges(t *testing.T) {
	dir := t.TempDir()
	before := dir + "/before"
	after := dir + "/after"
	writeFile := func(p, body string) {
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(before, "CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_GONE=y\n")
	writeFile(after, "CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\nCONFIG_NEW=\"x\"\n")
	got, err := Changes(before, after)
	if err != nil {
		t.Fatal(err)
	}
	want := "CONFIG_B=y (was m)|CONFIG_C=y (was n)|CONFIG_GONE=n (was y)|CONFIG_NEW=\"x\" (was n)"
	if strings.Join(got, "|") != want {
		t.Errorf("got  %s\nwant %s", strings.Join(got, "|"), want)
	}
}
