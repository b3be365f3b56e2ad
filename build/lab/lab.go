// Package lab is a network of UML guests declared in a lab file: guests over shared root filesystem
// images (each with a copy-on-write file of its own), LANs between them (build/lan), an uplink through
// the user network where a guest has one, and checks run inside the guests. Every guest keeps the
// properties of a single sequestered boot: its Landlock sandbox, no host files, and the host closed
// unless the lab opens it for that guest.
package lab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/simple-uml/simple-uml/build/config"
	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/uml"
	"github.com/simple-uml/simple-uml/build/usernet"
)

// Lab is a lab file, labs/<name>.toml.
type Lab struct {
	Name   string  `toml:"-"`
	Path   string  `toml:"-"`
	Guests []Guest `toml:"guest"`
	LANs   []LAN   `toml:"lan"`
	Checks []Check `toml:"check"`
}

// Guest is one UML kernel of the lab.
type Guest struct {
	Name   string `toml:"name"`
	Recipe string `toml:"recipe"` // whose image in dist/ it boots; empty: boot.recipe
	// Image is a root filesystem image to boot instead of a recipe's, relative to the lab file's
	// folder; Load makes it absolute. RootPassword is what its console login asks for.
	Image        string `toml:"image"`
	RootPassword string `toml:"root_password"`
	Mem          string `toml:"mem"`  // empty: 128M
	Nice         int    `toml:"nice"` // CPU priority of every host process of the guest: 0 to 19 (the least)
	Args         string `toml:"args"` // more kernel arguments, space-separated
	// Uplink gives the guest the user network as vec0: outbound TCP and UDP made by this process, the
	// host closed unless HostAccess.
	Uplink     bool        `toml:"uplink"`
	HostAccess bool        `toml:"host_access"`
	Forward    string      `toml:"forward"`    // host 127.0.0.1 ports to the guest's: "8080:80" (needs uplink)
	Forwarding bool        `toml:"forwarding"` // the guest routes between its interfaces
	Interfaces []Interface `toml:"interface"`
	Routes     []string    `toml:"routes"` // "10.2.0.0/24 via 10.1.0.254"
	Run        Commands    `toml:"run"`    // run as root once its network is up, one after the other
}

// Interface is a guest's place on a LAN: vec1 for its first, vec2 for its second, ...
type Interface struct {
	LAN     string `toml:"lan"`
	Address string `toml:"address"` // IPv4 with prefix, e.g. 10.1.0.1/24
}

// LAN is a local network of the lab.
type LAN struct {
	Name    string `toml:"name"`
	Capture bool   `toml:"capture"` // write every frame to <lab run folder>/<name>.pcap
}

// Check is a shell command run as root in a guest once the lab is up, and what it must give.
type Check struct {
	Name  string   `toml:"name"`
	Guest string   `toml:"guest"`
	Run   Commands `toml:"run"`
	Want  string   `toml:"want"` // its output, exactly; empty: any output
	Fail  bool     `toml:"fail"` // it must fail (exit status not 0), as a connection that may not be made
}

// route is a parsed Routes entry.
type route struct {
	dst netip.Prefix
	via netip.Addr
}

// MaxGuests bounds a lab: each guest's interfaces get addresses numbered by guest (see mac), and a
// host runs a few hundred UML guests at the most anyway.
const MaxGuests = 250

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}$`)

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("lab name %q: use a lower-case letter, then letters, digits and '-' (16 at most)", name)
	}
	return nil
}

// Load reads and checks dir/<name>.toml. Unknown keys are errors, as in every settings file.
func Load(dir, name string) (*Lab, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	l := &Lab{Name: name, Path: filepath.Join(dir, name+".toml")}
	err := config.DecodeFile(l.Path, l, "labs/README.md")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ident.Unknown("lab", name, dir, config.TOMLNames(dir))
	}
	if err != nil {
		return nil, fmt.Errorf("lab %w", err)
	}
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("lab %s: %w", l.Path, err)
	}
	for i, g := range l.Guests {
		if g.Image != "" && !filepath.IsAbs(g.Image) {
			l.Guests[i].Image = filepath.Join(filepath.Dir(l.Path), g.Image)
		}
	}
	return l, nil
}

// Decode reads a lab as JSON (as an instance's spec holds it, and a lab guest's container is given
// it) and checks it as Load does. Its guests' images, when they have any, are paths as given.
func Decode(data []byte) (*Lab, error) {
	var l Lab
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := checkName(l.Name); err != nil {
		return nil, err
	}
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("lab %s: %w", l.Name, err)
	}
	return &l, nil
}

// GuestNames are the names of the lab's guests, in the file's order.
func (l *Lab) GuestNames() []string {
	var names []string
	for _, g := range l.Guests {
		names = append(names, g.Name)
	}
	return names
}

// validate checks what the file declares against itself: names, references, addresses, routes.
func (l *Lab) validate() error {
	var errs []error
	if len(l.Guests) == 0 {
		errs = append(errs, errors.New("no [[guest]]"))
	}
	if len(l.Guests) > MaxGuests {
		errs = append(errs, fmt.Errorf("%d guests; a lab has %d at the most", len(l.Guests), MaxGuests))
	}
	lans := map[string]bool{}
	for _, n := range l.LANs {
		errs = append(errs, declare(lans, "LAN", n.Name)...)
	}
	guests := map[string]bool{}
	used := map[netip.Addr]string{}
	for _, g := range l.Guests {
		errs = append(errs, declare(guests, "guest", g.Name)...)
		errs = append(errs, g.validate(lans, used)...)
	}
	for _, c := range l.Checks {
		if !guests[c.Guest] {
			errs = append(errs, fmt.Errorf("check %q: no guest %q", c.Name, c.Guest))
		}
		if err := c.Run.check(); err != nil {
			errs = append(errs, fmt.Errorf("check %q: %w", c.Name, err))
		} else if len(c.Run.List) == 0 {
			errs = append(errs, fmt.Errorf("check %q: no run: give it the shell command it runs", c.Name))
		}
	}
	return errors.Join(errs...)
}

func (g Guest) validate(lans map[string]bool, used map[netip.Addr]string) []error {
	var errs []error
	fail := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("guest %s: "+format, append([]any{g.Name}, a...)...))
	}
	if err := g.Run.check(); err != nil {
		fail("%v", err)
	}
	if g.Forward != "" || g.HostAccess {
		if !g.Uplink {
			fail("forward and host_access go through the uplink: set uplink = true")
		}
		if _, err := usernet.ParseForwards(g.Forward); err != nil {
			fail("%v", err)
		}
	}
	if g.Image != "" && g.Recipe != "" {
		fail("image and recipe both name what it boots: keep one")
	}
	if g.RootPassword != "" && g.Image == "" {
		fail("root_password goes with image (a recipe's image has its recipe's)")
	}
	if g.Nice < 0 || g.Nice > 19 {
		fail("nice %d: from 0 to 19 (a higher priority than yours needs root)", g.Nice)
	}
	if len(g.Interfaces) > 8 {
		fail("%d interfaces; 8 at the most", len(g.Interfaces))
	}
	onLAN := map[string]bool{}
	for _, i := range g.Interfaces {
		if !lans[i.LAN] {
			fail("interface on LAN %q, which no [[lan]] declares", i.LAN)
		}
		if onLAN[i.LAN] {
			fail("two interfaces on LAN %s", i.LAN)
		}
		onLAN[i.LAN] = true
		p, err := netip.ParsePrefix(i.Address)
		if err != nil || !p.Addr().Is4() || p.Bits() < 8 || p.Bits() > 30 || p.Addr() == p.Masked().Addr() {
			fail("address %q on %s: want an IPv4 host address with its prefix, e.g. 10.1.0.1/24", i.Address, i.LAN)
			continue
		}
		if usernet.Subnet == p.Masked().String() {
			fail("address %s on %s is in the uplink's network %s", i.Address, i.LAN, usernet.Subnet)
		}
		if other, dup := used[p.Addr()]; dup {
			fail("address %s is %s's too", p.Addr(), other)
		}
		used[p.Addr()] = g.Name
	}
	for _, r := range g.Routes {
		if _, err := parseRoute(r); err != nil {
			fail("route %q: %v", r, err)
		}
	}
	if g.Mem != "" {
		if _, err := ident.Memory("mem", g.Mem); err != nil {
			fail("%v", err)
		}
	}
	if strings.Contains(g.Args, `"`) {
		fail("args %q: no quotes (the kernel would read a quoted argument with its spaces as one)", g.Args)
	}
	for _, a := range strings.Fields(g.Args) {
		if uml.HostParameter(a) {
			fail("args %q: disks, host files, consoles, network devices, memory and UML's own files are the lab's to set", a)
		}
	}
	return errs
}

// declare records name as a LAN's or guest's, refusing a name that is not one and a name twice.
func declare(names map[string]bool, what, name string) []error {
	var errs []error
	if !nameRE.MatchString(name) {
		errs = append(errs, fmt.Errorf("%s name %q: use a lower-case letter, then letters, digits and '-' (16 at most)", what, name))
	}
	if names[name] {
		errs = append(errs, fmt.Errorf("%s %s declared twice", what, name))
	}
	names[name] = true
	return errs
}

// parseRoute reads "10.2.0.0/24 via 10.1.0.254".
func parseRoute(s string) (route, error) {
	f := strings.Fields(s)
	if len(f) != 3 || f[1] != "via" {
		return route{}, errors.New(`want "<network>/<prefix> via <address>"`)
	}
	dst, err := netip.ParsePrefix(f[0])
	if err != nil || !dst.Addr().Is4() || dst != dst.Masked() {
		return route{}, fmt.Errorf("%q is not an IPv4 network", f[0])
	}
	via, err := netip.ParseAddr(f[2])
	if err != nil || !via.Is4() {
		return route{}, fmt.Errorf("%q is not an IPv4 address", f[2])
	}
	return route{dst: dst, via: via}, nil
}
