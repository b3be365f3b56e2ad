package lab

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/simple-uml/simple-uml/build/console"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/lan"
	"github.com/simple-uml/simple-uml/build/run"
	"github.com/simple-uml/simple-uml/build/ui"
	"github.com/simple-uml/simple-uml/build/uml"
	"github.com/simple-uml/simple-uml/build/usernet"
)

// Image is what a guest boots: a root filesystem image and the root password its console asks for.
type Image struct {
	Path         string
	RootPassword string
}

// Options says what a lab boots and where it runs.
type Options struct {
	// Guest is what every guest boots with: the kernel and the sandbox; the lab file gives each its
	// image, memory, arguments, network and LANs.
	Guest uml.Options
	Image func(Guest) (Image, error) // what a guest boots: its image, or its recipe's
	Runs  string                     // where the run's own folder is made: COW files, console logs (without Logs), captures
	// Disks, when set, keeps each guest's COW file in Disks/<guest>/ across runs (a lab instance's),
	// rather than in the run's folder, which Stop empties of them.
	Disks string
	// Logs, when set, keeps each guest's console log in Logs/<guest>.console.log across runs,
	// rotated past LogMax bytes (a lab instance's, which runs for days), rather than in the run's
	// folder, bounded at uml.ConsoleLogged.
	Logs   string
	LogMax int64
	// Only, when set, boots that guest of the lab alone, with the LANs it is on: the other guests
	// run elsewhere (a pod each), and Join carries the LANs to them.
	Only string
	// ForwardAddress is where the guests' forwards listen (uml.Net's; empty: the host's loopback).
	ForwardAddress string
	// Console, when set, gets every guest's console too (a container's output, with Only).
	Console io.Writer
	// Join, when set, is given each LAN (with its place in the lab's list) as it starts, before
	// any guest boots.
	Join    func(index int, l *lan.LAN) error
	Ready   string        // console text that means a guest is up
	Timeout time.Duration // for each step of each guest
	Log     io.Writer
}

// Running is a started lab. Stop ends it.
type Running struct {
	Lab     *Lab
	Dir     string // the run's own folder: the guests' folders while it runs, then its captures and (without Options.Logs) consoles
	own     *files.PrivateDir
	sockets *files.PrivateDir // a short private folder for the LANs' sockets (a socket's path has 107 bytes)
	token   string            // what a console's client sends first (build/console)
	opts    Options
	lans    []*lan.LAN
	files   []*os.File // the captures
	guests  []*guestRun
	mu      sync.Mutex // guards each guest's vm while they boot (the LANs' admitters read them)
}

type guestRun struct {
	spec            Guest
	image           Image
	console         string         // its console log
	log             io.WriteCloser // open on console
	hub             *console.Hub
	consoleListener net.Listener
	vm              *uml.Guest
}

// Start brings the lab up: its LANs, then every guest at once, each logged in on its console and
// configured (addresses, forwarding, routes, its run commands). Anything that fails stops what was
// started and names the guest.
func Start(ctx context.Context, l *Lab, o Options) (*Running, error) {
	if err := os.MkdirAll(o.Runs, 0o755); err != nil {
		return nil, err
	}
	own, err := files.NewPrivateDir(o.Runs, "lab-"+l.Name+"-", nil)
	if err != nil {
		return nil, err
	}
	r := &Running{Lab: l, Dir: own.Path, own: own, opts: o, token: rand.Text()}
	if r.sockets, err = files.NewPrivateDir("", "suml-lab-", nil); err != nil {
		own.Remove()
		return nil, err
	}
	// The guests are listed before the LANs listen: a LAN's admitter reads the list.
	logs := r.Dir
	if o.Logs != "" {
		logs = o.Logs
	}
	for _, g := range l.Guests {
		if o.Only == "" || g.Name == o.Only {
			r.guests = append(r.guests, &guestRun{spec: g, console: ConsolePath(logs, g.Name), hub: console.NewHub()})
		}
	}
	if len(r.guests) == 0 {
		r.sockets.Remove()
		own.Remove()
		return nil, fmt.Errorf("lab %s has no guest %q (it has %s)", l.Name, o.Only, strings.Join(l.GuestNames(), ", "))
	}
	if err := r.startLANs(); err != nil {
		r.Stop()
		return nil, err
	}
	if err := r.eachGuest(func(g *guestRun) error { return r.boot(ctx, g) }); err != nil {
		r.Stop()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("lab %s: %w; every guest is stopped", l.Name, ctx.Err())
		}
		return nil, err
	}
	return r, nil
}

// startLANs starts a switch per LAN a guest here is on, with its capture file when asked, and
// gives it to Options.Join.
func (r *Running) startLANs() error {
	for index, n := range r.Lab.LANs {
		if !r.onLAN(n.Name) {
			continue
		}
		var capture io.Writer
		if n.Capture {
			f, err := os.OpenFile(r.CapturePath(n.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			r.files = append(r.files, f)
			capture = f
		}
		sw, err := lan.Start(n.Name, r.socket(n.Name), capture, r.admitter(n.Name))
		if err != nil {
			return err
		}
		r.lans = append(r.lans, sw)
		if r.opts.Join != nil {
			if err := r.opts.Join(index, sw); err != nil {
				return err
			}
		}
	}
	return nil
}

// onLAN says whether a guest that boots here has an interface on LAN lanName (every LAN of a
// lab that boots all its guests).
func (r *Running) onLAN(lanName string) bool {
	if r.opts.Only == "" {
		return true
	}
	for _, g := range r.guests {
		if slices.ContainsFunc(g.spec.Interfaces, func(i Interface) bool { return i.LAN == lanName }) {
			return true
		}
	}
	return false
}

// admitter admits to LAN lanName the kernels of the guests with an interface on it: the process
// that connects is the kernel itself (UML's vector driver connects when the guest brings the
// interface up).
func (r *Running) admitter(lanName string) lan.Admit {
	return func(pid int) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, g := range r.guests {
			if g.vm != nil && g.vm.IsKernel(pid) {
				return slices.ContainsFunc(g.spec.Interfaces, func(i Interface) bool { return i.LAN == lanName })
			}
		}
		return false
	}
}

// diskDir is the folder of g's COW file.
func (r *Running) diskDir(g *guestRun) string {
	if r.opts.Disks != "" {
		return filepath.Join(r.opts.Disks, g.spec.Name)
	}
	return filepath.Join(r.Dir, g.spec.Name)
}

// DiskPath is a guest's COW file in its disk folder (Options.Disks/<guest>, or the run's).
func DiskPath(folder string) string { return filepath.Join(folder, "guest.cow") }

// CapturePath is where a LAN's capture is written.
func (r *Running) CapturePath(lanName string) string { return filepath.Join(r.Dir, lanName+".pcap") }

// ConsolePath is where a guest's console is logged.
func (r *Running) ConsolePath(guest string) string {
	for _, g := range r.guests {
		if g.spec.Name == guest {
			return g.console
		}
	}
	return ConsolePath(r.Dir, guest)
}

// ConsolePath is where a guest's console is logged in folder: the run's, or Options.Logs.
func ConsolePath(folder, guest string) string { return filepath.Join(folder, guest+".console.log") }

func (r *Running) socket(lanName string) string {
	return filepath.Join(r.sockets.Path, lanName+".sock")
}

// eachGuest runs f for every guest at once and returns their errors, each naming its guest.
func (r *Running) eachGuest(f func(*guestRun) error) error {
	errs := make([]error, len(r.guests))
	var wg sync.WaitGroup
	for i, g := range r.guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(g); err != nil {
				errs[i] = fmt.Errorf("guest %s: %w (console: %s)", g.spec.Name, err, g.console)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// options are what guest g boots with, its COW file in folder own: Options.Guest's kernel and
// sandbox, and what the lab file says of g. The lab file alone opens doors: whatever network or
// host folder Guest came with (a container image's spec, made with boot.net) is not g's.
func (r *Running) options(g *guestRun, own string) uml.Options {
	o := r.opts.Guest
	o.Image, o.COW, o.Mem, o.Nice, o.Args = g.image.Path, DiskPath(own), g.spec.Mem, g.spec.Nice, strings.Fields(g.spec.Args)
	o.Net, o.Hostfs, o.LANs = nil, "", nil
	tee := console.Tee{g.log, g.hub}
	if r.opts.Console != nil {
		tee = append(tee, r.opts.Console)
	}
	o.Console = tee
	if g.spec.Uplink {
		forwards, _ := usernet.ParseForwards(g.spec.Forward) // checked by Load
		o.Net = &uml.Net{Transport: uml.UserNet, HostAccess: g.spec.HostAccess, Forwards: forwards, ForwardAddress: r.opts.ForwardAddress, Hostname: g.spec.Name}
	}
	for j, i := range g.spec.Interfaces {
		o.LANs = append(o.LANs, uml.LANPort{Socket: r.socket(i.LAN), MAC: mac(r.guestIndex(g), j)})
	}
	return o
}

// openLog opens the guest's console log: bounded in the run's folder, or rotated in Options.Logs.
func (r *Running) openLog(g *guestRun) error {
	if r.opts.Logs != "" {
		if err := os.MkdirAll(r.opts.Logs, 0o700); err != nil {
			return err
		}
		g.log = &files.RotatingLog{Path: g.console, Max: r.opts.LogMax}
		return nil
	}
	f, err := os.OpenFile(g.console, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	g.log = struct {
		io.Writer
		io.Closer
	}{uml.ConsoleLog(f), f}
	return nil
}

// boot starts one guest, waits until it is up, logs in and configures it.
func (r *Running) boot(ctx context.Context, g *guestRun) error {
	var err error
	if g.image, err = r.opts.Image(g.spec); err != nil {
		return err
	}
	if err := r.openLog(g); err != nil {
		return err
	}
	// Each guest's COW file in a folder of its own: its sandbox may write there, and nowhere another
	// guest's disk, console or capture is.
	own := r.diskDir(g)
	if err := os.MkdirAll(own, 0o700); err != nil {
		return err
	}
	o := r.options(g, own)
	guestCtx := ctx
	if r.opts.Disks != "" {
		// Stop, not ctx, ends a guest whose disk is kept: it settles the disk first.
		guestCtx = context.WithoutCancel(ctx)
	}
	vm, err := uml.Start(guestCtx, o)
	if err != nil {
		return err
	}
	r.mu.Lock()
	g.vm = vm
	r.mu.Unlock()
	if err := r.serveConsole(g); err != nil {
		return err
	}
	if _, err := g.vm.Expect(ctx, r.opts.Ready, r.opts.Timeout); err != nil {
		return err
	}
	if err := g.vm.LoginRoot(ctx, g.image.RootPassword, r.opts.Timeout); err != nil {
		return err
	}
	for _, cmd := range configureCommands(g.spec) {
		out, status, err := g.vm.Run(ctx, cmd, r.opts.Timeout)
		if err != nil {
			return fmt.Errorf("configure: %s: %w", cmd, err)
		}
		if status != 0 {
			return fmt.Errorf("configure: %s: exit status %d: %s", cmd, status, ui.Visible(out))
		}
	}
	return nil
}

// StartBound is the longest Start may take when each step of each guest takes timeout at the most:
// the guests start together, each through its steps in turn (ready, login, each configure command,
// each of its run commands).
func (l *Lab) StartBound(timeout time.Duration) time.Duration {
	steps := 0
	for _, g := range l.Guests {
		steps = max(steps, 2+len(configureCommands(g)))
	}
	return time.Duration(steps) * timeout
}

// guestIndex is g's place in the lab file, whichever guests boot here: its MAC addresses are
// numbered by it, and must not collide with those of guests booted elsewhere.
func (r *Running) guestIndex(g *guestRun) int {
	return slices.IndexFunc(r.Lab.Guests, func(o Guest) bool { return o.Name == g.spec.Name })
}

// mac is a guest's address on its n-th LAN interface: locally administered, unique in the lab.
func mac(guest, n int) string { return fmt.Sprintf("52:54:01:%02x:%02x:01", guest+1, n+1) }

// configureCommands are the shell commands that give a guest its name, addresses, forwarding and
// routes, then start what it runs: plain ip(8) commands, which busybox and iproute2 both have, so
// any image works without configuration of its own.
func configureCommands(g Guest) []string {
	cmds := []string{"hostname " + run.Quote(g.Name)}
	for j, i := range g.Interfaces {
		dev := uml.LANDevice(j + 1)
		cmds = append(cmds, fmt.Sprintf("ip link set %s up && ip addr add %s dev %s", dev, i.Address, dev))
	}
	forwarding := "0"
	if g.Forwarding {
		forwarding = "1"
	}
	cmds = append(cmds, "echo "+forwarding+" > /proc/sys/net/ipv4/ip_forward")
	for _, s := range g.Routes {
		rt, _ := parseRoute(s) // checked by Load
		cmds = append(cmds, fmt.Sprintf("ip route add %s via %s", rt.dst, rt.via))
	}
	return append(cmds, g.Run.List...)
}

// Check runs the lab's checks, each in its guest, and returns what each found (with Options.Only,
// the checks of that guest alone). An error is a check that could not run at all.
func (r *Running) Check(ctx context.Context) ([]uml.CheckResult, error) {
	var results []uml.CheckResult
	for _, c := range r.Lab.Checks {
		g := r.guest(c.Guest)
		if g == nil { // booted elsewhere
			continue
		}
		res, err := g.vm.RunChecks(ctx, []uml.Check{{Name: c.Name, Command: c.Run.Shell(), Judge: c.judge}}, r.opts.Timeout, r.opts.Log)
		results = append(results, res...)
		if err != nil {
			return results, fmt.Errorf("guest %s: %w (console: %s)", c.Guest, err, g.console)
		}
	}
	return results, nil
}

func (c Check) judge(out string, status int) (bool, string) {
	switch {
	case c.Fail && status == 0:
		return false, fmt.Sprintf("succeeded, and must not: %q", out)
	case c.Fail && c.Want != "" && out != c.Want:
		return false, fmt.Sprintf("failed (status %d) with %q, want %q", status, out, c.Want)
	case c.Fail:
		return true, fmt.Sprintf("failed, as it must (status %d): %q", status, out)
	case status != 0:
		return false, fmt.Sprintf("exit status %d: %q", status, out)
	case c.Want != "" && out != c.Want:
		return false, fmt.Sprintf("got %q, want %q", out, c.Want)
	}
	return true, out
}

// Run runs a shell command as root on a guest's console and returns its output and exit status.
func (r *Running) Run(ctx context.Context, guest, command string) (string, int, error) {
	g := r.guest(guest)
	if g == nil || g.vm == nil {
		return "", -1, fmt.Errorf("lab %s has no guest %q up", r.Lab.Name, guest)
	}
	return g.vm.Run(ctx, command, r.opts.Timeout)
}

// Pid is the process (and process group) of a guest's kernel on the host; 0 when it is not up.
func (r *Running) Pid(guest string) int {
	if g := r.guest(guest); g != nil && g.vm != nil {
		return g.vm.Pid()
	}
	return 0
}

func (r *Running) guest(name string) *guestRun {
	for _, g := range r.guests {
		if g.spec.Name == name {
			return g
		}
	}
	return nil
}

// Down lists the guests that are no longer up: a kernel that stopped on its own (a power-off) or
// panicked, with where its console is.
func (r *Running) Down() []string {
	var out []string
	for _, g := range r.guests {
		if g.vm == nil {
			continue
		}
		// A panic first: a panicked kernel may have ended too.
		if strings.Contains(g.vm.Console(), "Kernel panic") {
			out = append(out, fmt.Sprintf("%s panicked (console: %s)", g.spec.Name, g.console))
			continue
		}
		select {
		case <-g.vm.Done():
			out = append(out, fmt.Sprintf("%s stopped (console: %s)", g.spec.Name, g.console))
		default:
		}
	}
	return out
}

// Stop ends every guest, every LAN and their files. The run folder keeps the consoles and captures;
// the COW files go unless they are kept in Options.Disks.
// It has to finish within the 5 seconds mage gives a target after Ctrl-C before it exits anyway: the
// guests are stopped together, not one after another.
func (r *Running) Stop() {
	// The sockets go first, so that nobody attaches or joins while the lab stops, and so that the
	// folder is gone even when what follows is cut short.
	r.sockets.Remove()
	var stopping sync.WaitGroup
	var logging sync.Mutex
	for _, g := range r.guests {
		if g.consoleListener != nil {
			g.consoleListener.Close()
		}
		if g.vm != nil {
			stopping.Go(func() {
				if r.opts.Disks != "" { // kept: what the guest wrote just before must be on it
					if err := g.vm.Settle(uml.SettleTimeout); err != nil && r.opts.Log != nil {
						logging.Lock()
						fmt.Fprintf(r.opts.Log, "%s: stopping without its disk settled: %v\n", g.spec.Name, err)
						logging.Unlock()
					}
				}
				g.vm.Stop()
			})
		}
	}
	stopping.Wait()
	for _, g := range r.guests {
		g.hub.CloseAll()
		if g.log != nil {
			g.log.Close()
		}
	}
	for _, l := range r.lans {
		l.Close()
	}
	for _, f := range r.files {
		f.Close()
	}
	if r.opts.Disks == "" {
		for _, g := range r.guests {
			os.RemoveAll(r.diskDir(g))
		}
	}
	r.own.Keep()
}

// Sockets is the folder of the LANs' sockets while the lab runs.
func (r *Running) Sockets() string { return r.sockets.Path }
