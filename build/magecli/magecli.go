// Package magecli adds to mage's command line what a person expects of a tool: an unknown target is
// answered with the targets there are, where mage says only "Unknown target specified"; a closed
// terminal or a kill stops a target as Ctrl-C does.
package magecli

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// FirstTarget is the first target named on the command line of a compiled magefile (its arguments
// after the program name), past mage's own flags: -v, -l, -h and -t with its duration. It is "" when
// there is none, or when -l or -h asks for a listing or help rather than a run.
func FirstTarget(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-l" || a == "-h" || strings.HasPrefix(a, "-l=") || strings.HasPrefix(a, "-h="):
			return ""
		case a == "-t":
			i++ // its duration
		case strings.HasPrefix(a, "-"):
			// -v, -t=5m, -v=true
		default:
			return a
		}
	}
	return ""
}

// CheckTarget returns an error listing the targets when args name a target that targets (mage's
// names, as `go tool mage -l` lists them) does not hold.
func CheckTarget(args []string, targets []string) error {
	target := FirstTarget(args)
	if target == "" {
		return nil
	}
	for _, name := range targets {
		if strings.EqualFold(name, target) {
			return nil
		}
	}
	sorted := slices.Sorted(slices.Values(targets))
	return fmt.Errorf("unknown target %q; simple-uml's targets are: %s\n`go tool mage -l` describes them, `go tool mage -h <target>` one", target, strings.Join(sorted, ", "))
}

// InterruptOnHangupAndTerm makes SIGHUP (the terminal closed) and SIGTERM (kill, timeout, a service
// manager) stop the running target as Ctrl-C does: mage cancels a target's context on SIGINT only,
// and any other of them would end the program at once, leaving what the target's cleanup removes.
// A second one ends it at once, as a second Ctrl-C does.
func InterruptOnHangupAndTerm() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGTERM)
	go func() {
		for range signals {
			syscall.Kill(os.Getpid(), syscall.SIGINT)
		}
	}()
}
