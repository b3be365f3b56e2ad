// Package host checks that the tools a target needs are installed, and says how to install the missing
// ones on the common distributions. Targets run the check before downloading anything.
package host

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/simple-uml/simple-uml/build/run"
)

// Tool is a program (or header file) a stage needs and the packages that provide it.
type Tool struct {
	Name   string // program looked up in PATH, or an absolute path for a file
	Why    string
	Debian string
	Fedora string
	Arch   string
}

// Kernel is what building the UML kernel needs.
var Kernel = []Tool{
	{"make", "runs the kernel build", "make", "make", "make"},
	{"gcc", "compiles the kernel", "gcc", "gcc", "gcc"},
	{"ld", "links the kernel", "binutils", "binutils", "binutils"},
	{"strip", "strips the linux executable for dist/", "binutils", "binutils", "binutils"},
	{"flex", "builds the kconfig lexer", "flex", "flex", "flex"},
	{"bison", "builds the kconfig parser", "bison", "bison", "bison"},
	{"bc", "computes kernel constants", "bc", "bc", "bc"},
	{"perl", "runs kernel build scripts", "perl", "perl", "perl"},
	{"xz", "is used by kernel scripts to compress", "xz-utils", "xz", "xz"},
}

// Menuconfig adds what the kernel's menuconfig needs.
var Menuconfig = []Tool{
	{"pkg-config", "finds ncurses for menuconfig", "pkg-config", "pkgconf", "pkgconf"},
	{"/usr/include/ncurses.h", "menuconfig's terminal UI", "libncurses-dev", "ncurses-devel", "ncurses"},
}

// Image is what building and booting root filesystem images needs.
var Image = []Tool{
	{"mke2fs", "makes ext4 images without root", "e2fsprogs", "e2fsprogs", "e2fsprogs"},
	{"debugfs", "reads the configured image back into the rootfs tarball", "e2fsprogs", "e2fsprogs", "e2fsprogs"},
	{"fakeroot", "gives files in the image root ownership without root rights", "fakeroot", "fakeroot", "fakeroot"},
}

// Debug is what `mage debug` needs; the other targets do without it.
var Debug = []Tool{
	{"gdb", "runs `mage debug`", "gdb", "gdb", "gdb"},
}

// Git is what kernel.tree and `mage bisect` need.
var Git = []Tool{
	{"git", "reads kernel.tree's commit and runs `mage bisect`", "git", "git", "git"},
}

// Versions records the first line each command prints about its tool's version ("unknown: why"
// when it cannot say), for records of what made an output.
func Versions(ctx context.Context, cmds [][]string) map[string]string {
	out := map[string]string{}
	for _, c := range cmds {
		prog, err := LookPath(c[0])
		if err != nil {
			out[c[0]] = "unknown: " + err.Error()
			continue
		}
		var all bytes.Buffer
		err = run.Run(ctx, run.Cmd{Args: append([]string{prog}, c[1:]...), Stdout: &all, Stderr: &all, Echo: io.Discard})
		line, _, _ := strings.Cut(strings.TrimSpace(all.String()), "\n")
		if err != nil && line == "" {
			line = "unknown: " + err.Error()
		}
		out[c[0]] = line
	}
	return out
}

// sbin are the folders where e2fsprogs's tools live, which Debian leaves out of an ordinary user's
// PATH.
var sbin = []string{"/usr/sbin", "/sbin"}

// LookPath finds a program in PATH, then in /usr/sbin and /sbin.
func LookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil || strings.Contains(name, "/") {
		return p, err
	}
	for _, d := range sbin {
		c := filepath.Join(d, name)
		if fi, serr := os.Stat(c); serr == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return c, nil
		}
	}
	return "", err
}

// Where says where each tool of the sets is: its path (with a note when PATH does not lead there),
// or "missing".
func Where(sets ...[]Tool) []string {
	var out []string
	for _, t := range unique(sets) {
		switch {
		case strings.HasPrefix(t.Name, "/"):
			if present(t.Name) {
				out = append(out, fmt.Sprintf("%s: present (%s)", t.Name, t.Why))
			} else {
				out = append(out, fmt.Sprintf("%s: missing (%s; Debian/Ubuntu: sudo apt-get install %s)", t.Name, t.Why, t.Debian))
			}
		default:
			p, err := LookPath(t.Name)
			switch {
			case err != nil:
				out = append(out, fmt.Sprintf("%s: missing (%s; Debian/Ubuntu: sudo apt-get install %s)", t.Name, t.Why, t.Debian))
			case !onPath(t.Name):
				out = append(out, fmt.Sprintf("%s: %s (not on your PATH; simple-uml uses it from there)", t.Name, p))
			default:
				out = append(out, fmt.Sprintf("%s: %s", t.Name, p))
			}
		}
	}
	return out
}

func onPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// MissingError lists missing tools with install commands.
type MissingError struct{ Missing []Tool }

func (e *MissingError) Error() string {
	var names, deb, fed, arch []string
	for _, t := range e.Missing {
		names = append(names, fmt.Sprintf("%s (%s)", t.Name, t.Why))
		deb, fed, arch = addUnique(deb, t.Debian), addUnique(fed, t.Fedora), addUnique(arch, t.Arch)
	}
	return fmt.Sprintf("missing host tools: %s\n  Debian/Ubuntu: sudo apt-get install %s\n  Fedora:        sudo dnf install %s\n  Arch:          sudo pacman -S %s",
		strings.Join(names, ", "), strings.Join(deb, " "), strings.Join(fed, " "), strings.Join(arch, " "))
}

func addUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// Check returns a *MissingError naming every tool of the given sets that is not installed.
func Check(sets ...[]Tool) error {
	var missing []Tool
	for _, t := range unique(sets) {
		if !present(t.Name) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return &MissingError{Missing: missing}
	}
	return nil
}

// unique lists the tools of the sets once each, in order.
func unique(sets [][]Tool) []Tool {
	var out []Tool
	seen := map[string]bool{}
	for _, set := range sets {
		for _, t := range set {
			if !seen[t.Name] {
				seen[t.Name] = true
				out = append(out, t)
			}
		}
	}
	return out
}

func present(name string) bool {
	if strings.HasPrefix(name, "/") {
		_, err := os.Stat(name)
		return err == nil
	}
	_, err := LookPath(name)
	return err == nil
}
