package lab

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/files"
)

// TestAttachGuestRefuses: labConsole's end finds the running lab by its record, which only its user
// reads, and refuses a lab that is not running and a guest the lab has not, naming the fix.
func TestAttachGuestRefuses(t *testing.T) {
	runDir := t.TempDir()
	l := &Lab{Name: "pair", Guests: []Guest{{Name: "a"}, {Name: "b"}}}
	if err := AttachGuest(context.Background(), runDir, l, "a", os.Stdin, io.Discard); err == nil || !strings.Contains(err.Error(), "go tool mage lab pair") {
		t.Errorf("a lab not running: %v", err)
	}
	r := &Running{Lab: l, sockets: &files.PrivateDir{Path: t.TempDir()}, token: "secret"}
	path, err := r.Record(runDir)
	if err != nil || path != RecordFile(runDir, "pair") {
		t.Fatalf("record %s, %v", path, err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the record: %v, %v; want mode 0600", info, err)
	}
	tests := []struct{ guest, want string }{
		{"nosuch", `lab pair has no guest "nosuch"`},
		{"b", "is the lab running?"}, // recorded, but nothing serves its console
	}
	for _, tt := range tests {
		if err := AttachGuest(context.Background(), runDir, l, tt.guest, os.Stdin, io.Discard); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("guest %s: %v, want %q", tt.guest, err, tt.want)
		}
	}
}
