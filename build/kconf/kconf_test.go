package kconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `#
# Automatically generated file; DO NOT EDIT.
#
CONFIG_UML=y
CONFIG_HOSTFS=m
# CONFIG_SOUND is not set
CONFIG_LOCALVERSION=""
CONFIG_NR_CPUS=1
  CONFIG_INDENTED=y
`
	c, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{"CONFIG_UML": "y", "CONFIG_HOSTFS": "m", "CONFIG_SOUND": "n", "CONFIG_LOCALVERSION": `""`, "CONFIG_NR_CPUS": "1", "CONFIG_INDENTED": "y"}
	if len(c) != len(want) {
		t.Fatalf("got %v", c)
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("%s = %q, want %q", k, c[k], v)
		}
	}
	if c.Get("CONFIG_ABSENT") != "n" {
		t.Error("absent option should read as n")
	}
	for _, bad := range []string{"UML=y\n", "CONFIG_UML\n", "CONFIG_UML=\n", "CONFIG_UML = y\n"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("Parse(%q) err = %v, want a line 1 error", bad, err)
		}
	}
}

func TestMerge(t *testing.T) {
	a := Fragment{File: "kconfig/10-base.config", Options: Config{"CONFIG_HOSTFS": "y", "CONFIG_EXT4_FS": "y"}}
	b := Fragment{File: "kconfig/20-net.config", Options: Config{"CONFIG_UML_NET_SLIRP": "y", "CONFIG_EXT4_FS": "y"}}
	c := Fragment{File: "kconfig/30-local.config", Options: Config{"CONFIG_HOSTFS": "n"}}
	tests := []struct {
		name    string
		frags   []Fragment
		want    int
		wantErr []string
	}{
		{"agreeing fragments", []Fragment{a, b}, 3, nil},
		{"none", nil, 0, nil},
		{"conflict names both files", []Fragment{a, b, c}, 0, []string{"kconfig/10-base.config", "kconfig/30-local.config", "CONFIG_HOSTFS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Merge(tt.frags)
			if tt.wantErr != nil {
				for _, w := range tt.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v, want it to mention %q", err, w)
					}
				}
				return
			}
			if err != nil || len(req.Options) != tt.want {
				t.Fatalf("Merge = %v, %v", req.Options, err)
			}
			if len(tt.frags) > 0 && req.From["CONFIG_EXT4_FS"] != a.File {
				t.Errorf("CONFIG_EXT4_FS from %s, want %s", req.From["CONFIG_EXT4_FS"], a.File)
			}
		})
	}
}

func TestCheckExplains(t *testing.T) {
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(tree, "arch", "um"), 0o755)
	os.WriteFile(filepath.Join(tree, "arch", "um", "Kconfig.net"), []byte(`
menu "UML Network Devices"
config UML_NET_VDE
	bool "VDE transport (obsolete)"
	depends on UML_NET
	depends on !64BIT || BROKEN
	help
	  Obsolete.
endmenu
config HOSTFS
	tristate "Host filesystem"
`), 0o644)
	req := Requested{
		Options: Config{"CONFIG_UML_NET_VDE": "y", "CONFIG_HOSTFS": "y", "CONFIG_TYPO_FS": "y", "CONFIG_SOUND": "n"},
		From:    map[string]string{"CONFIG_UML_NET_VDE": "kconfig/20-net.config", "CONFIG_HOSTFS": "kconfig/10-base.config", "CONFIG_TYPO_FS": "kconfig/10-base.config", "CONFIG_SOUND": "kconfig/10-base.config"},
	}
	final := Config{"CONFIG_HOSTFS": "y", "CONFIG_UML_NET_VDE": "n"}
	err := Check(req, final, tree)
	me, ok := err.(*MismatchError)
	if !ok || len(me.Mismatches) != 2 {
		t.Fatalf("err = %v, want two mismatches", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"kconfig/20-net.config: CONFIG_UML_NET_VDE requested y, the final .config has n (depends on UML_NET && (!64BIT || BROKEN))",
		"CONFIG_TYPO_FS requested y, the final .config has n (no Kconfig file in this kernel defines it",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if err := Check(Requested{Options: Config{"CONFIG_HOSTFS": "y"}}, final, ""); err != nil {
		t.Errorf("satisfied request: %v", err)
	}
}

func TestDiffAndWriteBack(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "10-base.config")
	os.WriteFile(base, []byte("# base\nCONFIG_HOSTFS=y\n# CONFIG_SOUND is not set\n"), 0o644)
	frags, err := LoadFragments(dir)
	if err != nil {
		t.Fatal(err)
	}
	before := Config{"CONFIG_HOSTFS": "y", "CONFIG_EXT4_FS": "y", "CONFIG_NR_CPUS": "1"}
	after := Config{"CONFIG_HOSTFS": "m", "CONFIG_EXT4_FS": "y", "CONFIG_NR_CPUS": "1", "CONFIG_SOUND": "y", "CONFIG_DEBUG_INFO": "y"}
	changed := Diff(before, after)
	if len(changed) != 3 {
		t.Fatalf("Diff = %v", changed)
	}
	local := filepath.Join(dir, "90-menuconfig.config")
	files, err := WriteBack(frags, changed, local)
	if err != nil || len(files) != 2 {
		t.Fatalf("WriteBack = %v, %v", files, err)
	}
	got, _ := os.ReadFile(base)
	if string(got) != "# base\nCONFIG_HOSTFS=m\nCONFIG_SOUND=y\n" {
		t.Errorf("base fragment rewritten as %q", got)
	}
	frags, err = LoadFragments(dir)
	if err != nil {
		t.Fatal(err)
	}
	req, err := Merge(frags)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(req, after, ""); err != nil {
		t.Errorf("fragments after write-back do not describe the new config: %v", err)
	}
	if req.Options["CONFIG_DEBUG_INFO"] != "y" || req.From["CONFIG_DEBUG_INFO"] != local {
		t.Errorf("new option not in %s: %v", local, req.From)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("CONFIG_A=y\n# CONFIG_B is not set\n# comment\n")
	f.Add("CONFIG_S=\"a b\"\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		// What parses must survive a round trip through Format.
		back, err := Parse(strings.NewReader(string(Format(c, "round trip"))))
		if err != nil || len(back) != len(c) {
			t.Fatalf("round trip of %q: %v %v", in, back, err)
		}
		for k, v := range c {
			if back[k] != v {
				t.Fatalf("%s: %q became %q", k, v, back[k])
			}
		}
	})
}

func TestBeneath(t *testing.T) {
	base := Fragment{File: "profiles/lean.config", Options: Config{"CONFIG_IPV6": "n", "CONFIG_NET": "y", "CONFIG_SWAP": "n"}}
	req := Requested{Options: Config{"CONFIG_IPV6": "y", "CONFIG_HOSTFS": "y"}, From: map[string]string{"CONFIG_IPV6": "40-ipv6.config", "CONFIG_HOSTFS": "10-boot.config"}}
	got := req.Beneath(base)
	want := map[string][2]string{ // option -> value, file
		"CONFIG_IPV6":   {"y", "40-ipv6.config"}, // the fragment wins over the profile
		"CONFIG_HOSTFS": {"y", "10-boot.config"},
		"CONFIG_NET":    {"y", "profiles/lean.config"},
		"CONFIG_SWAP":   {"n", "profiles/lean.config"},
	}
	if len(got.Options) != len(want) {
		t.Errorf("options %v, want %v", got.Options, want)
	}
	for name, w := range want {
		if got.Options[name] != w[0] || got.From[name] != w[1] {
			t.Errorf("%s = %s from %s, want %s from %s", name, got.Options[name], got.From[name], w[0], w[1])
		}
	}
	if req.Options["CONFIG_NET"] != "" {
		t.Error("Beneath changed the requested options it was called on")
	}
}
