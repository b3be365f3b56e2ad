package uml

import (
	"errors"
	"fmt"
	"os/exec"
	goruntime "runtime"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsyscall "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// Sandbox says how the UML process (and the helpers it starts) is confined on the host: a Landlock
// ruleset that lets it read its kernel, its image and the system's shared libraries, write its COW
// file, its private runtime folder and the shared folder, and nothing else; no TCP at all (the
// guest's network runs in this program, see usernet). A guest kernel exploit then reaches no more
// of the host than that.
type Sandbox string

const (
	// SandboxAuto (also the zero value) confines the process where the host kernel has Landlock, and
	// boots unconfined where it has not (DescribeSandbox says so).
	SandboxAuto Sandbox = "auto"
	// SandboxStrict refuses to boot without Landlock.
	SandboxStrict Sandbox = "strict"
	// SandboxOff does not confine the process (mage debug: gdb needs the host).
	SandboxOff Sandbox = "off"
)

// ErrNoLandlock is returned in strict mode on a host without Landlock.
var ErrNoLandlock = errors.New("this host's kernel has no Landlock (Linux 5.13 or later, with landlock in the lsm= list); set boot.sandbox = \"auto\" to boot unconfined")

// landlockConfig is what the ruleset handles: every file system and network right (TCP bind and
// connect) of Landlock ABI 6, and its scopes: signals and abstract unix sockets reach no process
// outside the sandbox. No rule grants a network right: the kernel process meets the guest's network
// on a unix socket, and tap devices are files.
func landlockConfig(o Options) landlock.Config {
	cfg := landlock.V6
	if o.Sandbox != SandboxStrict {
		cfg = cfg.BestEffort()
	}
	return cfg
}

// sandboxRules lists what the UML process may use on the host.
func sandboxRules(o Options, rt *runtime) ([]landlock.Rule, error) {
	rules := []landlock.Rule{
		// The dynamic loader and the C library of the kernel and its helpers.
		landlock.RODirs("/lib", "/lib64", "/usr/lib", "/usr/lib64").IgnoreIfMissing(),
		landlock.ROFiles("/etc/ld.so.cache").IgnoreIfMissing(),
		landlock.ROFiles(o.Kernel),
		landlock.RWFiles("/dev/null"),
		landlock.ROFiles("/dev/urandom", "/dev/random").IgnoreIfMissing(),
		landlock.RWDirs(rt.dir),
	}
	switch {
	case o.Image == "":
	case o.COW == "":
		// Without a COW file the guest writes its image (the configure boot does).
		rules = append(rules, landlock.RWFiles(o.Image))
	default:
		// The COW file exists by now (prepare makes a missing one): the guest writes that file and
		// nothing else in its folder.
		rules = append(rules, landlock.ROFiles(o.Image), landlock.RWFiles(o.COW))
	}
	if share, err := sharedFolder(o.Hostfs); err != nil {
		return nil, err
	} else if share != "" {
		rules = append(rules, landlock.RWDirs(share))
	}
	if o.Net != nil && o.Net.Transport != UserNet {
		// A raw transport: tap devices.
		rules = append(rules, landlock.RWFiles("/dev/net/tun").IgnoreIfMissing())
	}
	return rules, nil
}

// startConfined starts cmd under o's sandbox and at o's priority. Landlock and the nice value are
// a thread's, inherited by what it starts, so both are set on a thread of its own, locked and never
// unlocked (it ends with its goroutine), and the process is started from it: the rest of this program
// keeps its rights and priority.
func startConfined(cmd *exec.Cmd, o Options, rt *runtime) error {
	restrict, err := sandboxRestriction(o, rt)
	if err != nil {
		return err
	}
	if restrict == nil && o.Nice == 0 {
		return cmd.Start()
	}
	started := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked: the thread carries the ruleset and priority and ends here
		if restrict != nil {
			if err := restrict(); err != nil {
				started <- err
				return
			}
		}
		if o.Nice != 0 {
			// PRIO_PROCESS with who = 0 is the calling thread on Linux.
			if err := unix.Setpriority(unix.PRIO_PROCESS, 0, o.Nice); err != nil {
				started <- fmt.Errorf("nice %d: %w", o.Nice, err)
				return
			}
		}
		started <- cmd.Start()
	}()
	return <-started
}

// sandboxRestriction returns what confines the calling thread under o's sandbox, or nil for a boot
// that runs unconfined (sandbox off, or no Landlock in auto mode, which rt records).
func sandboxRestriction(o Options, rt *runtime) (func() error, error) {
	if o.Sandbox == SandboxOff {
		return nil, nil
	}
	rules, err := sandboxRules(o, rt)
	if err != nil {
		return nil, err
	}
	fd, flags, err := landlockConfig(o).NewRulesetFD(rules...)
	if err != nil && o.Sandbox == SandboxStrict {
		return nil, fmt.Errorf("sandbox: boot.sandbox = \"strict\" needs all of Landlock ABI 6 (Linux 6.12 or later); \"auto\" uses what this host has: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if fd < 0 {
		if o.Sandbox == SandboxStrict {
			return nil, ErrNoLandlock
		}
		rt.unconfined = true
		return nil, nil
	}
	return func() error {
		defer unix.Close(fd)
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("sandbox: no_new_privs: %w", err)
		}
		if err := llsyscall.LandlockRestrictSelf(fd, flags); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		return nil
	}, nil
}

// DescribeSandbox says in one line how a boot with o will be confined, for the banner of a boot.
func DescribeSandbox(o Options) string {
	if o.Sandbox == SandboxOff {
		return "off: the kernel process runs with all of your rights (boot.sandbox)"
	}
	abi, err := llsyscall.LandlockGetABIVersion()
	if err != nil || abi < 1 {
		if o.Sandbox == SandboxStrict {
			return "strict, but this host's kernel has no Landlock: the boot will be refused"
		}
		return "NONE: this host's kernel has no Landlock, so the kernel process runs with all of your rights (boot.sandbox = \"strict\" refuses to boot then)"
	}
	writes := "its COW file"
	if o.COW == "" {
		writes = "its image"
	}
	what := "reads only its kernel, image and the system's libraries, writes only " + writes + ", its run folder"
	if o.Hostfs != "" {
		what += " and the shared folder"
	}
	what += ", and opens no TCP connection"
	return fmt.Sprintf("Landlock (ABI %d): the kernel process %s", abi, what)
}
