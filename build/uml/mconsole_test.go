package uml

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeMconsole answers each request on rt's management console socket with replies, as the
// kernel does: records of error, more and length, then the data.
func fakeMconsole(t *testing.T, rt *runtime, replies ...[3]any) chan string {
	t.Helper()
	os.Mkdir(filepath.Join(rt.dir, mconsoleClients), 0o700)
	os.Mkdir(filepath.Join(rt.dir, rt.umid), 0o700)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(rt.dir, rt.umid, "mconsole"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 1024)
		n, from, err := c.ReadFromUnix(buf)
		if err != nil || n < 12 {
			return
		}
		if binary.NativeEndian.Uint32(buf) != mconsoleMagic || binary.NativeEndian.Uint32(buf[4:]) != mconsoleVersion {
			got <- "bad header"
			return
		}
		got <- string(buf[12 : 12+binary.NativeEndian.Uint32(buf[8:])])
		for _, r := range replies {
			reply := make([]byte, 12+mconsoleMaxData)
			binary.NativeEndian.PutUint32(reply, r[0].(uint32))
			binary.NativeEndian.PutUint32(reply[4:], r[1].(uint32))
			data := r[2].(string)
			binary.NativeEndian.PutUint32(reply[8:], uint32(len(data)))
			copy(reply[12:], data)
			c.WriteToUnix(reply, from)
		}
	}()
	return got
}

func TestMconsole(t *testing.T) {
	tests := []struct {
		name    string
		replies [][3]any
		want    string
		wantErr string
	}{
		{"one record", [][3]any{{uint32(0), uint32(0), "OK"}}, "OK", ""},
		{"in two records", [][3]any{{uint32(0), uint32(1), "first "}, {uint32(0), uint32(0), "second"}}, "first second", ""},
		{"refused", [][3]any{{uint32(1), uint32(0), "Unknown command"}}, "", "Unknown command"},
		{"never answered", nil, "", "i/o timeout"},
		{"without end", endless(200), "", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := &runtime{dir: t.TempDir(), umid: "guest"}
			sent := fakeMconsole(t, rt, tt.replies...)
			got, err := rt.mconsole("sysrq s", 300*time.Millisecond)
			if cmd := <-sent; cmd != "sysrq s" {
				t.Errorf("the kernel got %q", cmd)
			}
			if tt.wantErr == "" && (err != nil || got != tt.want) {
				t.Errorf("got %q %v, want %q", got, err, tt.want)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			if left, _ := filepath.Glob(filepath.Join(rt.dir, mconsoleClients, "*")); len(left) > 0 {
				t.Errorf("client sockets left: %v", left)
			}
		})
	}
}

// A guest's kernel that puts a link where its console socket was, or where its folder was, is not
// followed: nothing reaches the link's target.
func TestMconsoleRefusesLinks(t *testing.T) {
	outside := t.TempDir()
	other := filepath.Join(outside, "mconsole")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: other, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, link := range []struct{ name, at, to string }{
		{"the socket", "guest/mconsole", other},
		{"its folder", "guest", outside},
	} {
		rt := &runtime{dir: t.TempDir(), umid: "guest"}
		os.Mkdir(filepath.Join(rt.dir, mconsoleClients), 0o700)
		os.Mkdir(filepath.Join(rt.dir, "guest"), 0o700)
		os.Remove(filepath.Join(rt.dir, link.at))
		if err := os.Symlink(link.to, filepath.Join(rt.dir, link.at)); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.mconsole("sysrq s", time.Second); err == nil {
			t.Errorf("a link in place of %s: no error", link.name)
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if n, _, _ := c.ReadFromUnix(make([]byte, 1024)); n > 0 {
			t.Errorf("a link in place of %s: a datagram reached its target", link.name)
		}
	}
}

// endless is n records that each say more is coming.
func endless(n int) [][3]any {
	var out [][3]any
	for range n {
		out = append(out, [3]any{uint32(0), uint32(1), strings.Repeat("x", mconsoleMaxData)})
	}
	return out
}
