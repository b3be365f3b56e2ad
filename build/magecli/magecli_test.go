package magecli

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFirstTarget(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"kernel"}, "kernel"},
		{[]string{"-v", "rootfs", "-recipe=void-musl"}, "rootfs"},
		{[]string{"-t", "5m", "boot"}, "boot"},
		{[]string{"-t=5m", "-v=true", "boot"}, "boot"},
		{[]string{"-l"}, ""},
		{[]string{"-h", "kernel"}, ""},
		{[]string{"pkg", "template.toml"}, "pkg"},
	}
	for _, tt := range tests {
		if got := FirstTarget(tt.args); got != tt.want {
			t.Errorf("FirstTarget(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	targets := []string{"kernel", "labTest", "boot"}
	tests := []struct {
		args []string
		want string // in the error; "" for none
	}{
		{[]string{"kernel"}, ""},
		{[]string{"labtest", "router"}, ""},
		{[]string{"-v", "boot"}, ""},
		{[]string{"-l"}, ""},
		{[]string{"kernl"}, `unknown target "kernl"; simple-uml's targets are: boot, kernel, labTest`},
	}
	for _, tt := range tests {
		err := CheckTarget(tt.args, targets)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%q: %v, want %q", tt.args, err, tt.want)
		}
	}
}

// interruptChild makes the test binary wait for SIGINT after InterruptOnHangupAndTerm (see TestMain).
const interruptChild = "SUML_MAGECLI_INTERRUPT_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(interruptChild) == "1" {
		InterruptOnHangupAndTerm()
		interrupted := make(chan os.Signal, 1)
		signal.Notify(interrupted, syscall.SIGINT)
		fmt.Println("ready")
		select {
		case <-interrupted:
			fmt.Println("interrupted")
		case <-time.After(10 * time.Second):
			fmt.Println("no SIGINT")
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// SIGHUP and SIGTERM reach a target as the SIGINT mage stops it on.
func TestInterruptOnHangupAndTerm(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), interruptChild+"=1")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			lines := bufio.NewScanner(out)
			lines.Scan()
			cmd.Process.Signal(sig)
			lines.Scan()
			if lines.Text() != "interrupted" {
				t.Errorf("after %v the program said %q, want interrupted", sig, lines.Text())
			}
		})
	}
}
