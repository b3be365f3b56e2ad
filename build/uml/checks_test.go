package uml

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckJudges: each judge of `mage test` passes what a healthy guest prints and fails the rest,
// the door check in both directions.
func TestCheckJudges(t *testing.T) {
	s, err := StartHostService()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	token, _ := io.ReadAll(c)
	c.Close()
	if strings.TrimSpace(string(token)) != s.token || !strings.HasPrefix(s.token, "SUML-HOST-") {
		t.Fatalf("the service answered %q", token)
	}
	xbps := XbpsDatabaseCheck([]string{"busybox-1.36.1_1"})
	tests := []struct {
		name   string
		check  Check
		out    string
		status int
		want   bool
	}{
		{"equals", Check{Judge: Equals("ext4")}, "ext4", 0, true},
		{"equals, other output", Check{Judge: Equals("ext4")}, "hostfs", 0, false},
		{"equals, failed command", Check{Judge: Equals("ext4")}, "ext4", 1, false},
		{"xbps-query", xbps, "1 packages (xbps-query)", 0, true},
		{"xbps by grep", xbps, "1 packages (grep)", 0, true},
		{"xbps, a package missing", xbps, "missing busybox-1.36.1_1", 1, false},
		{"no modules, busybox insmod", NoModulesCheck(), "insmod: can't insert '/etc/hostname': kernel does not support requested operation", 0, true},
		{"no modules, insmod with strerror", NoModulesCheck(), "insmod: can't insert '/etc/hostname': Function not implemented", 0, true},
		{"no modules, kmod insmod", NoModulesCheck(), "insmod: ERROR: could not insert module /etc/hostname: Function not implemented", 1, true},
		{"no modules, no insmod", NoModulesCheck(), "", 0, true},
		{"modules on, refused by format", NoModulesCheck(), "insmod: can't insert '/etc/hostname': invalid module format", 0, false},
		{"modules on, no insmod", NoModulesCheck(), "/proc/modules exists", 0, false},
		{"door closed, refused", s.Check(false), "nc: 10.0.2.2 (10.0.2.2:1234): Connection refused", 1, true},
		{"door closed, token read", s.Check(false), s.token, 0, false},
		{"door closed, timed out", s.Check(false), "nc: timed out", 1, false},
		{"door closed, no client", s.Check(false), "no-client", 0, false},
		{"door open, token read", s.Check(true), s.token, 0, true},
		{"door open, refused", s.Check(true), "Connection refused", 1, false},
		{"door open, no client", s.Check(true), "no-client", 0, false},
	}
	for _, tt := range tests {
		if ok, detail := tt.check.Judge(tt.out, tt.status); ok != tt.want || detail == "" {
			t.Errorf("%s: %q -> %v %q, want %v", tt.name, tt.out, ok, detail, tt.want)
		}
	}
	if !strings.Contains(s.Check(false).Command, "10.0.2.2") {
		t.Errorf("the door check does not go through the gateway: %s", s.Check(false).Command)
	}
}

// TestXbpsDatabaseCommand runs the check's shell command through the host's sh: on the real xbps-query
// -l output of xbps 0.60.7 (../shared/fixtures/xbps/oracle-xbps-0.60.7), with a description holding
// a backslash (dash's echo would read it as an escape), and without xbps on its pkgdb.
func TestXbpsDatabaseCommand(t *testing.T) {
	listing, err := os.ReadFile("../../../shared/fixtures/xbps/oracle-xbps-0.60.7/xbps-query-l.txt")
	if err != nil {
		t.Fatal(err)
	}
	listing = append(listing, []byte("ii win-paths-1.0_1     paths like C:\\cygwin\\bin\n")...)
	pkgdb, err := os.ReadFile("../../../shared/fixtures/xbps/oracle-xbps-0.60.7/var-db-xbps/pkgdb-0.38.plist")
	if err != nil {
		t.Fatal(err)
	}
	withXbps, withoutXbps := t.TempDir(), t.TempDir()
	for name, data := range map[string]string{
		"listing":    string(listing),
		"xbps-query": "#!/bin/sh\ncat " + filepath.Join(withXbps, "listing") + "\n",
		"xbps-pkgdb": "#!/bin/sh\nexit 0\n",
	} {
		if err := os.WriteFile(filepath.Join(withXbps, name), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Without xbps the check reads /var/db/xbps: run it in a root of its own.
	db := filepath.Join(withoutXbps, "var", "db", "xbps")
	if err := os.MkdirAll(db, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(db, "pkgdb-0.38.plist"), pkgdb, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		bin, root string
		pkgvers   []string
		want      string
	}{
		{withXbps, "/", []string{"hypridle-0.1.7_3", "hyprcursor-0.1.13_1", "gstub-1.0_1", "win-paths-1.0_1"}, "4 packages (xbps-query)"},
		{withXbps, "/", []string{"hypridle-0.1.7_3", "hypridle-0.1.7"}, "missing hypridle-0.1.7"},
		{withXbps, "/", []string{"gstub-1.0_"}, "missing gstub-1.0_"},
		{"", withoutXbps, []string{"hypridle-0.1.7_3", "ly-1.0.3_1"}, "2 packages (grep)"},
		{"", withoutXbps, []string{"hypridle-0.1.7"}, "missing hypridle-0.1.7"},
	} {
		command := strings.ReplaceAll(XbpsDatabaseCheck(c.pkgvers).Command, "/var/db/xbps", filepath.Join(c.root, "var", "db", "xbps"))
		cmd := exec.Command("sh", "-c", command)
		cmd.Env = []string{"PATH=" + c.bin + ":/usr/bin:/bin"}
		out, _ := cmd.CombinedOutput()
		if strings.TrimSpace(string(out)) != c.want {
			t.Errorf("%v: %q, want %q", c.pkgvers, out, c.want)
		}
	}
}
