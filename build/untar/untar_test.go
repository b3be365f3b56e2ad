package untar

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

func TestCheckEnd(t *testing.T) {
	xzOf := func(data []byte) []byte {
		var b bytes.Buffer
		w, _ := xz.NewWriter(&b)
		w.Write(data)
		w.Close()
		return b.Bytes()
	}
	stream := xzOf([]byte("tar end marker"))
	cases := []struct {
		name string
		in   io.Reader
		want string
	}{
		{"nothing after", strings.NewReader(""), ""},
		{"zero padding", bytes.NewReader(make([]byte, 10240)), ""},
		{"text after", strings.NewReader("\x00\x00GARBAGE"), "data follows"},
		{"too much padding", bytes.NewReader(make([]byte, maxPadding+1)), "data follows"},
		{"garbage after the xz stream", mustXZ(t, append(append([]byte{}, stream...), "GARBAGE!"...), 14), "after the end"},
		{"xz padding after the stream", mustXZ(t, append(append([]byte{}, stream...), 0, 0, 0, 0), 14), ""},
	}
	for _, c := range cases {
		err := CheckEnd(c.in)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// mustXZ opens an xz stream and reads skip bytes of it, as a tar reader would before stopping.
func mustXZ(t *testing.T, data []byte, skip int) io.Reader {
	r, err := xz.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, skip)); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCounter(t *testing.T) {
	var c Counter
	for range MaxEntries {
		if err := c.Next("a.tar"); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Next("a.tar"); err == nil || !strings.Contains(err.Error(), "a.tar") {
		t.Errorf("entry %d: %v", MaxEntries+1, err)
	}
}
