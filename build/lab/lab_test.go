package lab

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/simple-uml/simple-uml/build/uml"
	"github.com/simple-uml/simple-uml/build/usernet"
)

const twoLANs = `
[[lan]]
name = "lan1"
capture = true

[[lan]]
name = "lan2"

[[guest]]
name = "a"
interface = [{ lan = "lan1", address = "10.1.0.1/24" }]
routes = ["10.2.0.0/24 via 10.1.0.254"]

[[guest]]
name = "router"
image = "images/router.ext4"
root_password = "r"
nice = 10
forwarding = true
interface = [{ lan = "lan1", address = "10.1.0.254/24" }, { lan = "lan2", address = "10.2.0.254/24" }]

[[guest]]
name = "c"
uplink = true
forward = "8080:80"
interface = [{ lan = "lan2", address = "10.2.0.3/24" }]
routes = ["10.1.0.0/24 via 10.2.0.254"]
run = ["busybox httpd -p 80 -h /srv"]

[[check]]
name = "a reaches c through the router"
guest = "a"
run = "wget -q -O - http://10.2.0.3/"
want = "hello"
`

func writeLab(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "net.toml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoad(t *testing.T) {
	l, err := Load(writeLab(t, twoLANs), "net")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Guests) != 3 || len(l.LANs) != 2 || !l.LANs[0].Capture || l.Guests[1].Interfaces[1].Address != "10.2.0.254/24" {
		t.Errorf("read %+v", l)
	}
	// An image is the lab file's folder's, whatever the folder Load was called from.
	if want := filepath.Join(filepath.Dir(l.Path), "images", "router.ext4"); l.Guests[1].Image != want || l.Guests[1].Nice != 10 {
		t.Errorf("router boots %q at nice %d, want %q at 10", l.Guests[1].Image, l.Guests[1].Nice, want)
	}
	got := strings.Join(configureCommands(l.Guests[1]), "\n")
	for _, want := range []string{"hostname router", "ip link set vec1 up && ip addr add 10.1.0.254/24 dev vec1",
		"ip link set vec2 up && ip addr add 10.2.0.254/24 dev vec2", "echo 1 > /proc/sys/net/ipv4/ip_forward"} {
		if !strings.Contains(got, want) {
			t.Errorf("router's configuration lacks %q:\n%s", want, got)
		}
	}
	if got := strings.Join(configureCommands(l.Guests[2]), "\n"); !strings.Contains(got, "echo 0 > /proc/sys/net/ipv4/ip_forward") ||
		!strings.HasSuffix(got, "ip route add 10.1.0.0/24 via 10.2.0.254\nbusybox httpd -p 80 -h /srv") {
		t.Errorf("c's configuration:\n%s", got)
	}
}

// TestLoadRefuses: what a lab file may not say, each with an error that names it.
func TestLoadRefuses(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"no guest", `[[lan]]` + "\nname = \"lan1\"\n", "no [[guest]]"},
		{"unknown key", "[[guest]]\nname = \"a\"\ncolour = \"red\"\n", "unknown key(s) guest.colour"},
		{"bad guest name", "[[guest]]\nname = \"../a\"\n", `guest name "../a"`},
		{"same name twice", "[[guest]]\nname = \"a\"\n[[guest]]\nname = \"a\"\n", "guest a declared twice"},
		{"unknown LAN", "[[guest]]\nname = \"a\"\ninterface = [{ lan = \"nowhere\", address = \"10.1.0.1/24\" }]\n", `LAN "nowhere"`},
		{"network address", "[[lan]]\nname = \"l\"\n[[guest]]\nname = \"a\"\ninterface = [{ lan = \"l\", address = \"10.1.0.0/24\" }]\n", "IPv4 host address"},
		{"address twice", "[[lan]]\nname = \"l\"\n[[guest]]\nname = \"a\"\ninterface = [{ lan = \"l\", address = \"10.1.0.1/24\" }]\n[[guest]]\nname = \"b\"\ninterface = [{ lan = \"l\", address = \"10.1.0.1/24\" }]\n", "is a's too"},
		{"uplink's network", "[[lan]]\nname = \"l\"\n[[guest]]\nname = \"a\"\ninterface = [{ lan = \"l\", address = \"10.0.2.9/24\" }]\n", "uplink's network"},
		{"forward without uplink", "[[guest]]\nname = \"a\"\nforward = \"8080:80\"\n", "set uplink = true"},
		{"host access without uplink", "[[guest]]\nname = \"a\"\nhost_access = true\n", "set uplink = true"},
		{"bad forward", "[[guest]]\nname = \"a\"\nuplink = true\nforward = \"80\"\n", "HOSTPORT:GUESTPORT"},
		{"bad route", "[[guest]]\nname = \"a\"\nroutes = [\"10.2.0.0/24 through 10.1.0.254\"]\n", "route"},
		{"a disk in args", "[[guest]]\nname = \"a\"\nargs = \"ubd1=/etc/shadow\"\n", "the lab's to set"},
		{"a host folder in args", "[[guest]]\nname = \"a\"\nargs = \"hostfs=/\"\n", "the lab's to set"},
		{"an initrd from the host in args", "[[guest]]\nname = \"a\"\nargs = \"initrd=/etc/shadow\"\n", "the lab's to set"},
		{"host memory files in args", "[[guest]]\nname = \"a\"\nargs = \"iomem=x,/etc/shadow\"\n", "the lab's to set"},
		{"an xterm console in args", "[[guest]]\nname = \"a\"\nargs = \"xterm=/usr/bin/sh,-T,-e\"\n", "the lab's to set"},
		{"a vhost-user socket in args", "[[guest]]\nname = \"a\"\nargs = \"virtio_uml.device=/run/sock:1\"\n", "the lab's to set"},
		{"another run folder in args", "[[guest]]\nname = \"a\"\nargs = \"uml_dir=/home\"\n", "the lab's to set"},
		{"memory in args", "[[guest]]\nname = \"a\"\nargs = \"mem=64G\"\n", "the lab's to set"},
		{"a quoted disk in args", "[[guest]]\nname = \"a\"\nargs = '\"ubd1=/home/u/.ssh/id_ed25519\"'\n", "no quotes"},
		{"a disk spelt with a dash in args", "[[guest]]\nname = \"a\"\nargs = \"fake-ide\"\n", "the lab's to set"},
		{"a control socket with a dash in args", "[[guest]]\nname = \"a\"\nargs = \"virtio-uml.device=/run/sock:1\"\n", "the lab's to set"},
		{"a device tree from the host in args", "[[guest]]\nname = \"a\"\nargs = \"dtb=/etc/shadow\"\n", "the lab's to set"},
		{"mem adding kernel parameters", "[[guest]]\nname = \"a\"\nmem = \"128M ubd1=/some/host/file\"\n", `mem "128M ubd1=/some/host/file"`},
		{"mem not a size", "[[guest]]\nname = \"a\"\nmem = \"lots\"\n", "want a size such as 256M"},
		{"image and recipe", "[[guest]]\nname = \"a\"\nimage = \"a.ext4\"\nrecipe = \"void-minimal\"\n", "keep one"},
		{"a password without an image", "[[guest]]\nname = \"a\"\nroot_password = \"x\"\n", "goes with image"},
		{"nice below 0", "[[guest]]\nname = \"a\"\nnice = -5\n", "from 0 to 19"},
		{"nice above 19", "[[guest]]\nname = \"a\"\nnice = 20\n", "from 0 to 19"},
		{"check of no guest", "[[guest]]\nname = \"a\"\n[[check]]\nname = \"x\"\nguest = \"b\"\nrun = \"true\"\n", `no guest "b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeLab(t, tt.body), "net")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	many := strings.Repeat("[[guest]]\nname = \"g\"\n", MaxGuests+1)
	if _, err := Load(writeLab(t, many), "net"); err == nil || !strings.Contains(err.Error(), "at the most") {
		t.Errorf("%d guests: %v", MaxGuests+1, err)
	}
	if _, err := Load(t.TempDir(), "../etc"); err == nil || !strings.Contains(err.Error(), "lab name") {
		t.Errorf("a lab name with a path: %v", err)
	}
}

// TestLoadUnknownLab: a lab that is not in the folder is refused with the labs that are.
func TestLoadUnknownLab(t *testing.T) {
	dir := writeLab(t, twoLANs)
	os.WriteFile(filepath.Join(dir, "another.toml"), []byte(twoLANs), 0o644)
	_, err := Load(dir, "nosuch")
	if want := `unknown lab "nosuch" in ` + dir + `: another, net`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %q", err, want)
	}
}

// TestStartBound: the guests start together, so the bound is the guest with the most steps.
func TestStartBound(t *testing.T) {
	for _, tc := range []struct {
		name   string
		guests []Guest
		want   int // steps
	}{
		{"one plain guest: ready, login, hostname, forwarding", []Guest{{Name: "a"}}, 4},
		{"the busiest guest counts", []Guest{{Name: "a"}, {Name: "b", Interfaces: []Interface{{LAN: "x", Address: "10.0.0.1/24"}}, Routes: []string{"10.1.0.0/24 via 10.0.0.254"}, Run: Commands{List: []string{"true", "true"}}}}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (&Lab{Guests: tc.guests}).StartBound(time.Second); got != time.Duration(tc.want)*time.Second {
				t.Errorf("got %s, want %d steps", got, tc.want)
			}
		})
	}
}

// TestDecode: a lab as JSON (an instance's spec, a lab guest's container) comes back as Load read
// it, and is checked as Load checks it.
func TestDecode(t *testing.T) {
	l, err := Load(writeLab(t, twoLANs), "net")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(l)
	back, err := Decode(data)
	if err != nil || !reflect.DeepEqual(back, l) {
		t.Fatalf("decoded %+v, %v; want %+v", back, err, l)
	}
	for name, bad := range map[string]string{
		"not JSON":      "lab = 1",
		"unknown field": `{"Name": "net", "Guests": [{"Name": "a"}], "Extra": 1}`,
		"bad name":      `{"Name": "Net!", "Guests": [{"Name": "a"}]}`,
		"no guest":      `{"Name": "net"}`,
		"unknown LAN":   `{"Name": "net", "Guests": [{"Name": "a", "Interfaces": [{"LAN": "nowhere", "Address": "10.0.0.1/24"}]}]}`,
	} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("%s: decoded %s", name, bad)
		}
	}
}

// TestOptionsOpenOnlyWhatTheLabSays: a guest boots with the kernel and sandbox of Options.Guest,
// but not with a network or host folder Guest came with (a container image's, made with boot.net
// and a forward): only the lab file's uplink opens one.
func TestOptionsOpenOnlyWhatTheLabSays(t *testing.T) {
	image := uml.Options{Kernel: "/opt/linux", Hostfs: "/srv", Net: &uml.Net{Transport: uml.UserNet, HostAccess: true, Forwards: []usernet.Forward{{Host: 2222, Guest: 22}}}}
	l := &Lab{Name: "two", Guests: []Guest{{Name: "closed"}, {Name: "up", Uplink: true, Forward: "8080:80"}}}
	r := &Running{Lab: l, opts: Options{Guest: image, ForwardAddress: "0.0.0.0"}}
	for _, g := range l.Guests {
		r.guests = append(r.guests, &guestRun{spec: g})
	}
	closed := r.options(r.guests[0], t.TempDir())
	if closed.Net != nil || closed.Hostfs != "" || closed.Kernel != "/opt/linux" {
		t.Errorf("a guest without uplink boots with %+v", closed)
	}
	up := r.options(r.guests[1], t.TempDir())
	if up.Net == nil || up.Net.HostAccess || len(up.Net.Forwards) != 1 || up.Net.Forwards[0].Host != 8080 || up.Net.ForwardAddress != "0.0.0.0" || up.Hostfs != "" {
		t.Errorf("a guest with an uplink boots with %+v, network %+v", up, up.Net)
	}
}
