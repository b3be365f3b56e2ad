// Package uml runs a User-Mode Linux kernel as an ordinary process: it builds the command line (root
// image or copy-on-write file over it, memory, hostfs, the user network with forwarded ports), puts
// the console on a pipe the caller can expect on and type into (or on the terminal, for people),
// keeps UML's runtime files in a private directory, and stops the whole process group on timeout or
// cancellation.
package uml

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/simple-uml/simple-uml/build/ident"
	"github.com/simple-uml/simple-uml/build/ui"
)

// Options describes one boot.
type Options struct {
	Kernel string // the linux executable
	Image  string // root filesystem image for ubd0; empty for none (a boot that ends before init, as KUnit's)
	// COW, when set, is a copy-on-write file over Image (created when missing): the guest writes
	// there and Image is only read, so several guests can share it.
	COW     string
	Mem     string    // guest memory, e.g. 256M; empty means 128M
	Init    string    // init= in the guest; empty leaves the kernel's default
	Args    []string  // more kernel arguments
	Hostfs  string    // host folder the guest can mount: mount -t hostfs none /mnt
	Sandbox Sandbox   // how the process is confined on the host; the zero value is SandboxAuto
	Net     *Net      // networking; nil for none
	LANs    []LANPort // interfaces on lab LANs (build/lan), vec1, vec2, ... in order
	Umid    string    // UML's machine id; empty means a unique one
	// Nice lowers the CPU priority of the kernel process, and so of every host process of the guest
	// (each guest address space is one), from 0 (as this program) to 19 (the least share).
	Nice    int
	Timeout time.Duration // for Boot's whole run; 0 means one minute
	Until   string        // Boot stops successfully as soon as the console prints this
	Console io.Writer     // also receives the console output (a log file)
}

// Result is what a boot printed and how long it took.
type Result struct {
	Console  string
	Duration time.Duration
}

// Error is a boot that failed, with the end of the console.
type Error struct {
	Reason  string
	Console string
}

func (e *Error) Error() string {
	lines := strings.Split(strings.TrimRight(e.Console, "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	// The console is the guest's: its control sequences are shown, not sent to your terminal.
	return fmt.Sprintf("UML boot failed: %s\n  console (last lines):\n    %s", e.Reason, ui.Visible(strings.Join(lines, "\n    ")))
}

// hostParameter matches the kernel parameters by which UML reaches the host: disks, host folders,
// consoles and terminals (xterm starts a host program), network devices, memory and the files that
// back it, its run folder, machine id and control socket, host sound devices, a device tree file.
var hostParameter = regexp.MustCompile(`^(ubd|udb|fake_ide|hostfs|con|ssl|xterm|eth|vec|virtio_uml|pcap|mem=|iomem|initrd|uml_dir|umid|mconsole|hostaudio|dsp|mixer|dtb)`)

// HostParameter says whether a kernel argument is one simple-uml sets itself, for the places that take
// arguments from a file someone else may have written (a lab's guests). It reads the argument as the
// kernel does: a leading quote is dropped, and '-' and '_' in a name are the same.
func HostParameter(arg string) bool {
	name := strings.ReplaceAll(strings.TrimLeft(arg, `"`), "-", "_")
	return hostParameter.MatchString(name)
}

// DefaultMem is a guest's memory when Options.Mem is empty.
const DefaultMem = "128M"

var umidSeq atomic.Int64

// umid is the kernel's machine id: Umid, or one of this process's own.
func (o Options) umid() string {
	if o.Umid != "" {
		return o.Umid
	}
	return fmt.Sprintf("simple-uml-%d-%d", os.Getpid(), umidSeq.Add(1))
}

// args returns the kernel command line for o, with runtime files under umlDir.
func (o Options) args(umlDir string) ([]string, error) {
	if o.Nice < 0 || o.Nice > 19 {
		return nil, fmt.Errorf("nice %d: from 0 to 19 (a higher priority than this program's needs root)", o.Nice)
	}
	mem := o.Mem
	if mem == "" {
		mem = DefaultMem
	}
	if _, err := ident.Memory("guest memory", mem); err != nil {
		return nil, err
	}
	hostfs, err := sharedFolder(o.Hostfs)
	if err != nil {
		return nil, err
	}
	// UML joins its arguments into the kernel command line, where a space starts a new parameter and
	// a comma separates ubd's files: a path holding one would add parameters nobody wrote.
	paths := []struct{ what, path string }{{"image", o.Image}, {"COW file", o.COW}, {"hostfs folder", hostfs}, {"uml_dir", umlDir}}
	for _, p := range o.LANs {
		paths = append(paths, struct{ what, path string }{"LAN socket", p.Socket})
	}
	for _, p := range paths {
		if strings.ContainsFunc(p.path, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == ',' }) {
			return nil, fmt.Errorf("%s %q: a path on the kernel command line may not hold white space, control characters or commas; use another path", p.what, p.path)
		}
	}
	disk := o.Image
	if o.COW != "" {
		// UML records the backing file's path in the COW header: make it absolute.
		abs, err := filepath.Abs(o.Image)
		if err != nil {
			return nil, err
		}
		disk = o.COW + "," + abs
	}
	args := []string{"mem=" + mem, "con=null", "con0=fd:0,fd:1", "uml_dir=" + umlDir, "umid=" + o.umid()}
	if o.Image != "" {
		args = append([]string{"ubd0=" + disk, "root=/dev/ubda", "rw"}, args...)
	}
	if hostfs != "" {
		args = append(args, "hostfs="+hostfs)
	}
	if o.Net != nil {
		net, err := o.Net.args(umlDir)
		if err != nil {
			return nil, err
		}
		args = append(args, net...)
	}
	for i, p := range o.LANs {
		dev, err := p.arg(i + 1)
		if err != nil {
			return nil, err
		}
		args = append(args, dev)
	}
	if o.Init != "" {
		args = append(args, "init="+o.Init)
	}
	return append(args, o.Args...), nil
}

// sharedFolder resolves the folder shared through hostfs to an absolute path without links (the
// kernel, patches/0001-hostfs-*, refuses to mount a link); "" shares none.
func sharedFolder(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	real, err := filepath.EvalSymlinks(dir)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if fi, serr := os.Stat(real); err != nil || serr != nil || !fi.IsDir() {
		return "", fmt.Errorf("hostfs folder %s is not a folder: set boot.hostfs (SUML_BOOT_HOSTFS) to an existing folder, or leave it empty to share none", dir)
	}
	return real, nil
}

// RunUntilExit runs the kernel until it exits (or prints Until), and fails on a panic, a timeout, or a non-zero
// exit. No process of the guest outlives the call.
func RunUntilExit(ctx context.Context, o Options) (Result, error) {
	timeout := o.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	g, err := Start(ctx, o)
	if err != nil {
		return Result{}, err
	}
	defer g.Stop()
	if o.Until != "" {
		if _, err := g.Expect(ctx, o.Until, timeout); err != nil {
			return Result{Console: g.Console(), Duration: g.Elapsed()}, err
		}
		return Result{Console: g.Console(), Duration: g.Elapsed()}, nil
	}
	err = g.Wait(timeout)
	return Result{Console: g.Console(), Duration: g.Elapsed()}, err
}

// kernelVariables are the only variables of this program's environment a kernel process gets (and
// those starting with SUML_, simple-uml's own settings, none secret): a kernel taken over reads its
// environment, and with a network could send it on. Tokens (GITHUB_TOKEN, cloud keys) and the
// addresses of the user's sockets (session bus, agents, display and terminal servers) stay out.
var kernelVariables = []string{"PATH", "HOME", "USER", "LOGNAME", "TERM", "LANG", "LANGUAGE", "TZ"}

// kernelEnv is the kernel process's environment: kernelVariables of this one's, and TMPDIR the
// boot's run folder (UML's memory file and sockets go there).
func kernelEnv(runDir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(kernelVariables, name) || strings.HasPrefix(name, "LC_") || strings.HasPrefix(name, "SUML_") {
			env = append(env, kv)
		}
	}
	return append(env, "TMPDIR="+runDir)
}
