package lab

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestRunStringOrList: a guest's run and a check's run each take a string (one command) or a list
// (several, in order).
func TestRunStringOrList(t *testing.T) {
	tests := []struct {
		name, guestRun, checkRun string // TOML values
		wantGuest                []string
		wantCheck                string
	}{
		{"strings", `"httpd -p 80"`, `"wget -q -O - http://10.1.0.1/"`, []string{"httpd -p 80"}, "wget -q -O - http://10.1.0.1/"},
		{"lists", `["mkdir -p /srv", "httpd -p 80 -h /srv &"]`, `["cd /srv", "cat index.html || echo none"]`,
			[]string{"mkdir -p /srv", "httpd -p 80 -h /srv &"}, `eval 'cd /srv' && eval 'cat index.html || echo none'`},
		{"lists of one", `["httpd -p 80"]`, `["uptime"]`, []string{"httpd -p 80"}, "uptime"},
		{"no run for the guest", "", `"true"`, nil, "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			guestRun := ""
			if tt.guestRun != "" {
				guestRun = "run = " + tt.guestRun + "\n"
			}
			body := "[[guest]]\nname = \"a\"\n" + guestRun + "[[check]]\nname = \"c\"\nguest = \"a\"\nrun = " + tt.checkRun + "\n"
			l, err := Load(writeLab(t, body), "net")
			if err != nil {
				t.Fatal(err)
			}
			cmds := configureCommands(l.Guests[0])
			if got := cmds[len(cmds)-len(tt.wantGuest):]; !slices.Equal(got, tt.wantGuest) || len(l.Guests[0].Run.List) != len(tt.wantGuest) {
				t.Errorf("the guest runs %q, want %q", l.Guests[0].Run.List, tt.wantGuest)
			}
			if got := l.Checks[0].Run.Shell(); got != tt.wantCheck {
				t.Errorf("the check runs %q, want %q", got, tt.wantCheck)
			}
		})
	}
}

// TestRunRefused: a run of another type, or with an empty command, is refused with the lab file, the
// guest or check, and the key.
func TestRunRefused(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"a number", "[[guest]]\nname = \"a\"\nrun = 42\n", `guest a: run is a number: want a shell command ("...") or a list of them`},
		{"a table", "[[guest]]\nname = \"a\"\nrun = { cmd = \"x\" }\n", "guest a: run is a table"},
		{"a list of numbers", "[[guest]]\nname = \"a\"\nrun = [\"x\", 1]\n", "guest a: run is a list whose item 2 is a number"},
		{"a list of lists", "[[guest]]\nname = \"a\"\nrun = [[\"x\"]]\n", "guest a: run is a list whose item 1 is a list"},
		{"an empty string", "[[guest]]\nname = \"a\"\nrun = \" \"\n", "guest a: run is empty"},
		{"an empty command", "[[guest]]\nname = \"a\"\nrun = [\"x\", \"\"]\n", "guest a: run's command 2 is empty"},
		{"a check's boolean", "[[guest]]\nname = \"a\"\n[[check]]\nname = \"c\"\nguest = \"a\"\nrun = true\n", `check "c": run is a boolean`},
		{"a check's date", "[[guest]]\nname = \"a\"\n[[check]]\nname = \"c\"\nguest = \"a\"\nrun = 2026-12-07\n", `check "c": run is a date or time`},
		{"a check's empty string", "[[guest]]\nname = \"a\"\n[[check]]\nname = \"c\"\nguest = \"a\"\nrun = \"\"\n", `check "c": run is empty`},
		{"a check's empty list", "[[guest]]\nname = \"a\"\n[[check]]\nname = \"c\"\nguest = \"a\"\nrun = []\n", `check "c": no run`},
		{"a check without run", "[[guest]]\nname = \"a\"\n[[check]]\nname = \"c\"\nguest = \"a\"\n", `check "c": no run`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeLab(t, tt.body)
			_, err := Load(dir, "net")
			if want := "lab " + dir + "/net.toml: " + tt.want; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("err = %v\nwant %s...", err, want)
			}
		})
	}
}

// TestCommandsShell runs a check's commands as a guest's shell would: in order, in one shell, up to
// the first that fails.
func TestCommandsShell(t *testing.T) {
	tests := []struct {
		list       []string
		out        string
		exitStatus int
	}{
		{[]string{"echo one"}, "one", 0},
		{[]string{"cd /", "pwd"}, "/", 0},
		{[]string{"x='a b'", `echo "$x"`}, "a b", 0},
		{[]string{"echo one # a comment", "echo two"}, "one\ntwo", 0},
		{[]string{"false || echo rescued", "echo after"}, "rescued\nafter", 0},
		{[]string{"echo first", "test -e /nonexistent", "echo never"}, "first", 1},
		{[]string{"(exit 2)", "echo never"}, "", 2},
	}
	for _, tt := range tests {
		line := Commands{List: tt.list}.Shell()
		out, err := exec.Command("sh", "-c", line).Output()
		status := 0
		if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
			status = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != tt.out || status != tt.exitStatus {
			t.Errorf("%q as %s: %q, status %d; want %q, %d", tt.list, line, got, status, tt.out, tt.exitStatus)
		}
	}
}
