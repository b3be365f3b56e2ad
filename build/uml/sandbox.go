package uml

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsyscall "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// Sandbox says how the UML process (and any process it starts) is confined on the host: a Landlock
// ruleset that lets it read its kernel, its image and the system's shared libraries, write its COW
// file, its private runtime folder and the shared folder, execute only itself (and its loader, which
// runs what it reads under the same sandbox), and nothing else; no TCP at all (the guest's network
// runs in this program, see usernet); a system-call filter (seccompProgram); no capability but
// root's to read and write files whatever their modes (dropCapabilities). A guest kernel exploit
// then reaches no more of the host than that.
type Sandbox string

const (
	// SandboxAuto (also the zero value) confines the process with Landlock where the host kernel has
	// it, and with the system-call filter and without capabilities everywhere (DescribeSandbox says
	// which).
	SandboxAuto Sandbox = "auto"
	// SandboxStrict refuses to boot without Landlock ABI minLandlockABI.
	SandboxStrict Sandbox = "strict"
	// SandboxOff does not confine the process (mage debug: gdb needs the host).
	SandboxOff Sandbox = "off"
)

// ErrNoLandlock is returned in strict mode on a host without Landlock.
var ErrNoLandlock = errors.New("this host's kernel has no Landlock (Linux 5.13 or later, with landlock in the lsm= list); set boot.sandbox = \"auto\" to boot without Landlock (the system-call filter alone)")

// minLandlockABI is what boot.sandbox = "strict" requires: file system rights, TCP, and the scopes
// (signals and abstract unix sockets reach no process outside the sandbox).
const minLandlockABI = 6

// landlockConfig is what the ruleset handles: every right and scope of Landlock up to ABI 10 that
// the host has. No rule grants a network right: the kernel process meets the guest's network on unix
// sockets. ABI 9 adds connecting to unix sockets by path (granted on the kernel's own sockets alone);
// ABI 10 adds UDP (the system-call filter already refuses inet sockets).
func landlockConfig() landlock.Config { return landlock.V10.BestEffort() }

// The rights the rules grant. None grants execute but on the kernel and its loader (which a kernel
// process taken over can still ask to run any file it reads: that program runs in this sandbox, no
// setuid program among them). None makes device nodes: root's kernel process keeps no
// CAP_MKNOD (dropCapabilities), and with it a node in its run folder would open a host disk.
const (
	readFile  = llsyscall.AccessFSReadFile
	execFile  = llsyscall.AccessFSReadFile | llsyscall.AccessFSExecute
	readDir   = llsyscall.AccessFSReadFile | llsyscall.AccessFSReadDir
	writeFile = llsyscall.AccessFSReadFile | llsyscall.AccessFSWriteFile | llsyscall.AccessFSTruncate
	writeDir  = readDir | writeFile | llsyscall.AccessFSRemoveDir | llsyscall.AccessFSRemoveFile | llsyscall.AccessFSMakeDir | llsyscall.AccessFSMakeReg | llsyscall.AccessFSMakeSock | llsyscall.AccessFSMakeFifo | llsyscall.AccessFSMakeSym
	connectTo = llsyscall.AccessFSResolveUnix
	tapDevice = writeFile | llsyscall.AccessFSIoctlDev
)

// sandboxRules lists what the UML process may use on the host.
func sandboxRules(o Options, rt *runtime) ([]landlock.Rule, error) {
	rules := []landlock.Rule{
		// The C library and what it loads (read and mapped, never executed as a program).
		landlock.PathAccess(readDir, "/lib", "/lib64", "/usr/lib", "/usr/lib64").IgnoreIfMissing(),
		landlock.PathAccess(readFile, "/etc/ld.so.cache", "/dev/urandom", "/dev/random").IgnoreIfMissing(),
		landlock.PathAccess(execFile, o.Kernel),
		landlock.PathAccess(writeFile, "/dev/null"),
		landlock.PathAccess(writeDir, rt.dir),
		// Where simple-uml binds the sockets the management console answers to (Settle).
		landlock.PathAccess(connectTo, filepath.Join(rt.dir, mconsoleClients)).IgnoreIfMissing(),
	}
	if loader, err := programLoader(o.Kernel); err != nil {
		return nil, err
	} else if loader != "" {
		rules = append(rules, landlock.PathAccess(execFile, loader))
	}
	switch {
	case o.Image == "":
	case o.COW == "":
		// Without a COW file the guest writes its image (the configure boot does).
		rules = append(rules, landlock.PathAccess(writeFile, o.Image))
	default:
		// The COW file exists by now (prepare makes a missing one): the guest writes that file and
		// nothing else in its folder.
		rules = append(rules, landlock.PathAccess(readFile, o.Image), landlock.PathAccess(writeFile, o.COW))
	}
	if share, err := sharedFolder(o.Hostfs); err != nil {
		return nil, err
	} else if share != "" {
		rules = append(rules, landlock.PathAccess(writeDir, share))
	}
	if rt.network != nil {
		rules = append(rules, landlock.PathAccess(connectTo, o.Net.socket(rt.dir)))
	}
	for _, p := range o.LANs {
		rules = append(rules, landlock.PathAccess(connectTo, p.Socket))
	}
	if o.Net.raw() {
		// A raw transport: tap devices.
		rules = append(rules, landlock.PathAccess(tapDevice, "/dev/net/tun").IgnoreIfMissing())
	}
	return rules, nil
}

// programLoader is the dynamic loader a program names (PT_INTERP), which the host kernel executes
// with it; empty for a static program.
func programLoader(program string) (string, error) {
	f, err := elf.Open(program)
	if err != nil {
		return "", fmt.Errorf("sandbox: kernel %s: %w", program, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(p.Open(), 4096))
		if err != nil {
			return "", fmt.Errorf("sandbox: kernel %s: program interpreter: %w", program, err)
		}
		return strings.TrimRight(string(data), "\x00"), nil
	}
	return "", nil
}

// sandboxConfinement is what confines a kernel under o's sandbox (see Sandbox and seccompProgram), and
// the Landlock ruleset it restricts itself with, or nil (sandbox off, or no Landlock on this host in
// auto mode, which rt records: the system-call filter and the loss of capabilities remain).
func sandboxConfinement(o Options, rt *runtime) (confinement, *os.File, error) {
	c := confinement{RulesetFD: -1, Nice: o.Nice}
	if o.Sandbox == SandboxOff {
		return c, nil, nil
	}
	rules, err := sandboxRules(o, rt)
	if err != nil {
		return c, nil, err
	}
	if abi, err := llsyscall.LandlockGetABIVersion(); o.Sandbox == SandboxStrict && err == nil && abi > 0 && abi < minLandlockABI {
		return c, nil, fmt.Errorf("sandbox: boot.sandbox = \"strict\" needs Landlock ABI %d (Linux 6.12 or later), this host has ABI %d; \"auto\" uses what this host has", minLandlockABI, abi)
	}
	fd, flags, err := landlockConfig().NewRulesetFD(rules...)
	if err != nil {
		return c, nil, fmt.Errorf("sandbox: %w", err)
	}
	var ruleset *os.File
	if fd >= 0 {
		ruleset = os.NewFile(uintptr(fd), "landlock-ruleset")
	} else if o.Sandbox == SandboxStrict {
		return c, nil, ErrNoLandlock
	} else {
		rt.unconfined = true
	}
	c.Sandbox, c.Flags, c.RawNet, c.Share = true, flags, o.Net.raw(), o.Hostfs != ""
	c.Keep = fileCapabilities
	if c.RawNet {
		c.Keep = rawNetCapabilities
	}
	return c, ruleset, nil
}

// DescribeSandbox says in one line how a boot with o will be confined, for the banner of a boot.
func DescribeSandbox(o Options) string {
	if o.Sandbox == SandboxOff {
		return "off: the kernel process runs with all of your rights (boot.sandbox)"
	}
	filter := "a system-call filter (no inet, netlink or packet sockets, io_uring, modules, namespaces, mounts or typing into the terminal)"
	if o.Net.raw() {
		filter = "a system-call filter (sockets of every kind: the raw transport needs them; no io_uring, modules, namespaces, mounts or typing into the terminal)"
	}
	abi, err := llsyscall.LandlockGetABIVersion()
	if err != nil || abi < 1 {
		if o.Sandbox == SandboxStrict {
			return "strict, but this host's kernel has no Landlock: the boot will be refused"
		}
		return "NO LANDLOCK on this host: the kernel process reads and writes all of your files; it has only " + filter + " (boot.sandbox = \"strict\" refuses to boot then)"
	}
	writes := "its COW file"
	if o.COW == "" {
		writes = "its image"
	}
	what := "reads only its kernel, image and the system's libraries, writes only " + writes + ", its run folder"
	if o.Hostfs != "" {
		what += " and the shared folder"
	}
	if abi >= 4 {
		what += ", opens no TCP connection"
	}
	if abi >= 9 {
		what += " and connects to no unix socket but its own"
	} else {
		// SECURITY.md, "Not covered yet": the user's D-Bus, ssh-agent, tmux sockets.
		what += ", but may connect to your unix sockets (that takes Landlock ABI 9)"
	}
	return fmt.Sprintf("Landlock (ABI %d): the kernel process %s; and %s", abi, what, filter)
}
