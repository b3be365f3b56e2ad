package uml

import (
	"strings"
	"testing"

	"github.com/simple-uml/simple-uml/build/usernet"
)

// TestDescribeDoors: the banner of a boot names every door to the host, open or closed.
func TestDescribeDoors(t *testing.T) {
	share := t.TempDir()
	cases := []struct {
		opts Options
		want []string
	}{
		{Options{}, []string{"network: none", "host files: none shared", "sandbox: "}},
		{Options{Net: &Net{Transport: UserNet}}, []string{"network: user-mode", "host services: closed"}},
		{Options{Hostfs: share, Net: &Net{Transport: UserNet, HostAccess: true, Forwards: []usernet.Forward{{Host: 2222, Guest: 22}}}},
			[]string{"OPEN: the host's loopback services are reachable as 10.0.2.2", "forward: host 127.0.0.1:2222 -> guest port 22", "host files: OPEN: " + share + " is shared"}},
		{Options{Net: &Net{Transport: "tuntap,,,tap0"}}, []string{"network: OPEN: tuntap,,,tap0"}},
	}
	for _, c := range cases {
		var out strings.Builder
		DescribeDoors(&out, c.opts)
		for _, w := range c.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("banner lacks %q:\n%s", w, out.String())
			}
		}
	}
}
