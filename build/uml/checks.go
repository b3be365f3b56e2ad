package uml

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/simple-uml/simple-uml/build/run"
	"github.com/simple-uml/simple-uml/build/ui"
	"github.com/simple-uml/simple-uml/build/usernet"
)

// Check is a shell command for the guest's console and the judge of what it printed.
type Check struct {
	Name, Command string
	Judge         func(out string, status int) (ok bool, detail string)
}

// CheckResult is what one check found.
type CheckResult struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// LoginRoot answers the console's login prompt as root, with password when the console asks for one.
func (g *Guest) LoginRoot(ctx context.Context, password string, timeout time.Duration) error {
	if err := g.Send("root\n"); err != nil {
		return err
	}
	_, which, err := g.ExpectAny(ctx, timeout, "assword:", "# ")
	if err != nil {
		return fmt.Errorf("login as root: %w", err)
	}
	if which == 0 {
		if password == "" {
			return fmt.Errorf("login as root: the console asks for a password and the recipe sets no root_password")
		}
		if err := g.Send(password + "\n"); err != nil {
			return err
		}
		if _, which, err = g.ExpectAny(ctx, timeout, "# ", "incorrect"); err != nil {
			return fmt.Errorf("login as root: %w", err)
		}
		if which == 1 {
			return fmt.Errorf("login as root: the recipe's root_password was refused")
		}
	}
	return nil
}

// RunChecks runs each check on the console of a logged-in guest, printing a line per check to w.
// An error is a check that could not run (the guest died, a timeout); a check that ran and failed
// is a result with OK false.
func (g *Guest) RunChecks(ctx context.Context, checks []Check, timeout time.Duration, w io.Writer) ([]CheckResult, error) {
	var results []CheckResult
	for _, c := range checks {
		out, status, err := g.Run(ctx, c.Command, timeout)
		if err != nil {
			return results, fmt.Errorf("check %q: %w", c.Name, err)
		}
		ok, detail := c.Judge(out, status)
		detail = ui.Visible(detail) // it quotes the guest's output
		results = append(results, CheckResult{Name: c.Name, OK: ok, Detail: detail})
		mark := "ok  "
		if !ok {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.Name, detail)
	}
	return results, nil
}

// WriteFile puts data into the logged-in guest at path, mode 0700, over the console: base64 in lines
// short enough for the terminal's line discipline, decoded by the guest's base64 (busybox and
// coreutils both have it).
func (g *Guest) WriteFile(ctx context.Context, path string, data []byte, timeout time.Duration) error {
	encoded := base64.StdEncoding.EncodeToString(data)
	staging := path + ".b64"
	steps := []string{": > " + run.Quote(staging)}
	for len(encoded) > 0 {
		n := min(len(encoded), 512)
		steps = append(steps, "printf %s "+encoded[:n]+" >> "+run.Quote(staging))
		encoded = encoded[n:]
	}
	steps = append(steps, fmt.Sprintf("base64 -d %s > %s && rm %s && chmod 700 %s", run.Quote(staging), run.Quote(path), run.Quote(staging), run.Quote(path)))
	for _, step := range steps {
		out, status, err := g.Run(ctx, step, timeout)
		if err != nil {
			return fmt.Errorf("copy into the guest's %s: %w", path, err)
		}
		if status != 0 {
			return fmt.Errorf("copy into the guest's %s: %q exited %d: %s", path, step, status, out)
		}
	}
	return nil
}

// Equals judges a command that must succeed and print exactly want.
func Equals(want string) func(string, int) (bool, string) {
	return func(out string, status int) (bool, string) {
		if status == 0 && out == want {
			return true, out
		}
		return false, fmt.Sprintf("got %q (status %d), want %q", out, status, want)
	}
}

// XbpsDatabaseCheck checks the package database the way a user meets it: with the image's own xbps
// when it has one (xbps-query lists every package given, xbps-pkgdb -a finds nothing wrong), and by
// reading the file where it has none.
func XbpsDatabaseCheck(pkgvers []string) Check {
	want := fmt.Sprintf("%d packages", len(pkgvers))
	// One listing, matched by the shell itself: a grep per package forks a hundred times, seconds
	// under UML.
	cmd := fmt.Sprintf(`if command -v xbps-query >/dev/null; then how=xbps-query; l=$(xbps-query -l 2>&1) || echo "xbps-query -l failed: $l"; `+
		`c=$(xbps-pkgdb -a 2>&1) || echo "xbps-pkgdb -a failed: $c"; l=$(printf '%%s\n' "$l" | while read -r s p _; do printf '<%%s %%s>\n' "$s" "$p"; done); `+
		`suml_has() { case "$l" in *"<ii $1>"*) return 0;; esac; return 1; }; `+
		`else how=grep; l=$(cat /var/db/xbps/pkgdb-0.38.plist); suml_has() { case "$l" in *"<string>$1</string>"*) return 0;; esac; return 1; }; fi; `+
		`n=0; for p in %s; do suml_has "$p" || { echo "missing $p"; n=1; }; done; [ $n = 0 ] && echo "%s ($how)"`,
		strings.Join(pkgvers, " "), want)
	return Check{"xbps database", cmd, func(out string, status int) (bool, string) {
		if status == 0 && (out == want+" (xbps-query)" || out == want+" (grep)") {
			return true, out
		}
		return false, fmt.Sprintf("got %q (status %d), want %q", out, status, want)
	}}
}

// NoModulesCheck checks that root in the guest loads no kernel module: a module runs in the kernel,
// which is a process of the host user's, and UML gives modules helpers that open host files and
// sockets. The kernel has no module support at all (no /proc/modules), and the guest's insmod, where
// it has one, is refused by the kernel (ENOSYS), not for the module's format.
func NoModulesCheck() Check {
	const want = "no module support"
	cmd := `if [ -e /proc/modules ]; then echo "/proc/modules exists"; fi; ` +
		`if command -v insmod >/dev/null; then insmod /etc/hostname 2>&1 | tail -n 1; fi`
	return Check{"guest root loads no kernel module", cmd, func(out string, status int) (bool, string) {
		// ENOSYS as kmod and libc say it, and as busybox's insmod does.
		enosys := strings.Contains(out, "Function not implemented") || strings.Contains(out, "kernel does not support requested operation")
		if !strings.Contains(out, "/proc/modules") && (out == "" || enosys) {
			return true, want
		}
		return false, fmt.Sprintf("got %q, want the kernel to refuse modules (Function not implemented) and no /proc/modules", out)
	}}
}

// HostService answers every connection on the host's loopback with a token, for the check of the
// door between the guest's user network and the host.
type HostService struct {
	ln    net.Listener
	port  int
	token string
}

// StartHostService listens on a free port of 127.0.0.1.
func StartHostService() (*HostService, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &HostService{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, token: "SUML-HOST-" + RandomHex(8)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, s.token)
			c.Close()
		}
	}()
	return s, nil
}

// Close stops the service.
func (s *HostService) Close() { s.ln.Close() }

// Check connects from the guest to the service: with host access it must read the service's token,
// without it the user network must refuse the connection (an answer, so the network is up, and a
// refusal, so the door is closed).
func (s *HostService) Check(hostAccess bool) Check {
	// busybox and OpenBSD nc, or bash's /dev/tcp: whichever the guest has.
	cmd := fmt.Sprintf(`if command -v nc >/dev/null; then nc %[1]s %[2]d </dev/null 2>&1; elif command -v bash >/dev/null; then bash -c 'cat </dev/tcp/%[1]s/%[2]d' 2>&1; else echo no-client; fi`,
		usernet.GatewayIP, s.port)
	noClient := func(out string) (bool, string, bool) {
		return false, "the guest has neither nc nor bash to connect with", out == "no-client"
	}
	if !hostAccess {
		return Check{"the host's loopback is closed to the guest", cmd, func(out string, status int) (bool, string) {
			switch {
			case strings.Contains(out, s.token):
				return false, fmt.Sprintf("the guest read the host service's token from %s:%d with host access off", usernet.GatewayIP, s.port)
			case strings.Contains(strings.ToLower(out), "refused"):
				return true, fmt.Sprintf("%s:%d refused", usernet.GatewayIP, s.port)
			}
			if ok, detail, is := noClient(out); is {
				return ok, detail
			}
			return false, fmt.Sprintf("got %q (status %d), want the connection refused", out, status)
		}}
	}
	return Check{"the host's loopback, opened by boot.host_access", cmd, func(out string, status int) (bool, string) {
		if strings.Contains(out, s.token) {
			return true, fmt.Sprintf("read the host service's token from %s:%d", usernet.GatewayIP, s.port)
		}
		if ok, detail, is := noClient(out); is {
			return ok, detail
		}
		return false, fmt.Sprintf("got %q (status %d) instead of the token", out, status)
	}}
}

// RandomHex is n random bytes in hex: names and tokens no one can guess.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
