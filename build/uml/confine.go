package uml

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"

	llsyscall "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"

	"github.com/simple-uml/simple-uml/build/run"
)

// confineVar, in the environment of this program, makes it a confining start instead of what it is
// otherwise: it confines itself as the variable's value (a confinement) says and executes the kernel
// in its place. startConfined starts this program (run.Self) so, for every binary that boots a
// guest links this package: simple-uml's and the tests'.
const confineVar = "SUML_CONFINE"

// confinement is what a confining start sets on itself before it executes Program: all of it is a
// thread's, and an exec keeps it.
type confinement struct {
	Program   string // the kernel
	Sandbox   bool   // false: the nice value only
	RulesetFD int    // a Landlock ruleset this program was given, or -1 (none, or no Landlock here)
	Flags     uint32 // landlock_restrict_self's
	Keep      uint64 // the capabilities kept
	RawNet    bool   // the system-call filter lets inet sockets through
	Share     bool   // a host folder is shared: the filter lets file metadata change
	Nice      int
}

func init() {
	if spec, ok := os.LookupEnv(confineVar); ok {
		os.Exit(confineAndExec(spec)) // returns only when it fails
	}
}

// confineAndExec confines this process as spec says and executes its program with this process's
// arguments and environment (without confineVar). It returns an exit status only on failure, having
// said why on standard error (the guest's console).
func confineAndExec(spec string) int {
	goruntime.LockOSThread() // what follows is this thread's, and the exec keeps this thread alone
	var c confinement
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		fmt.Fprintf(os.Stderr, "simple-uml: %s: %v\n", confineVar, err)
		return 126
	}
	if err := c.apply(); err != nil {
		fmt.Fprintf(os.Stderr, "simple-uml: confining %s: %v\n", c.Program, err)
		return 126
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, confineVar+"=") {
			env = append(env, kv)
		}
	}
	err := syscall.Exec(c.Program, os.Args[1:], env)
	fmt.Fprintf(os.Stderr, "simple-uml: exec %s: %v\n", c.Program, err)
	return 127
}

// apply sets the confinement on the calling thread: capabilities, no_new_privs, Landlock, the
// priority, then the system-call filter (last: it refuses some of what comes before).
func (c confinement) apply() error {
	if c.Sandbox {
		if err := dropCapabilities(c.Keep); err != nil {
			return err
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("sandbox: no_new_privs: %w", err)
		}
		if c.RulesetFD >= 0 {
			err := llsyscall.LandlockRestrictSelf(c.RulesetFD, c.Flags)
			unix.Close(c.RulesetFD)
			if err != nil {
				return fmt.Errorf("sandbox: %w", err)
			}
		}
	}
	if c.Nice != 0 {
		// PRIO_PROCESS with who = 0 is the calling thread on Linux.
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, c.Nice); err != nil {
			return fmt.Errorf("nice %d: %w", c.Nice, err)
		}
	}
	if c.Sandbox {
		return loadSeccomp(seccompOptions{rawNet: c.RawNet, share: c.Share})
	}
	return nil
}

// startConfined starts cmd under o's sandbox and at o's priority, tied to this program (it dies
// with it: run.StartTied). The confinement is set by the started process on itself, between its
// start and the exec of the kernel (this program, as a confining start): never on a thread of this
// program, which the kernel's sandbox would then let it signal or trace (Landlock lets a domain
// signal and trace its own).
func startConfined(cmd *exec.Cmd, o Options, rt *runtime) (*run.Tied, error) {
	c, ruleset, err := sandboxConfinement(o, rt)
	if err != nil {
		return nil, err
	}
	if ruleset != nil {
		defer ruleset.Close() // the started process has its own
	}
	if !c.Sandbox && c.Nice == 0 {
		return run.StartTied(cmd)
	}
	if ruleset != nil {
		c.RulesetFD = 3 + len(cmd.ExtraFiles)
		cmd.ExtraFiles = append(cmd.ExtraFiles, ruleset)
	}
	c.Program = cmd.Path
	spec, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, confineVar+"="+string(spec))
	// Its arguments are the kernel's, whose first names it in /proc until the exec.
	cmd.Path, cmd.Args = run.Self(), append([]string{"simple-uml-confine:" + filepath.Base(c.Program)}, cmd.Args...)
	return run.StartTied(cmd)
}
