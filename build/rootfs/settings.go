package rootfs

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/GehirnInc/crypt/sha512_crypt"

	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/run"
	"github.com/simple-uml/simple-uml/build/xbps"
)

// ConfigureOK and ConfigureFailed are what the configure boot prints when it ends; ConfigureStep
// begins the line it prints before each script and at the end, with the guest's uptime.
const (
	ConfigureOK     = "SUML-CONFIGURE-OK"
	ConfigureFailed = "SUML-CONFIGURE-FAILED"
	ConfigureStep   = "simple-uml: INSTALL"
)

// applySettings writes what the recipe asks for beyond packages. The overlay comes last, so a file
// in it wins over everything else.
func applySettings(root *os.Root, r *Recipe, repos []*Repo, epoch time.Time) error {
	// Mount points and the two directories whose modes matter; base-files may or may not have them.
	for _, d := range []struct {
		path string
		mode fs.FileMode
	}{{"dev", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"run", 0o755}, {"tmp", fs.ModeSticky | 0o777}, {"root", 0o700}, {"etc", 0o755}} {
		if _, err := root.Lstat(d.path); errors.Is(err, fs.ErrNotExist) {
			if err := root.Mkdir(d.path, 0o755); err != nil {
				return err
			}
			if err := root.Chmod(d.path, d.mode); err != nil {
				return err
			}
		}
	}
	if r.Hostname != "" {
		if err := writeGuestFile(root, "/etc/hostname", []byte(r.Hostname+"\n"), 0o644); err != nil {
			return err
		}
	}
	if err := addFstab(root); err != nil {
		return err
	}
	if len(r.AuthorizedKeys) > 0 {
		if err := writeGuestFile(root, "/root/.ssh/authorized_keys", []byte(strings.Join(r.AuthorizedKeys, "\n")+"\n"), 0o600); err != nil {
			return err
		}
		if err := root.Chmod("root/.ssh", 0o700); err != nil {
			return err
		}
	}
	if r.Timezone != "" {
		zone := "/usr/share/zoneinfo/" + r.Timezone
		if !guestExists(root, zone) {
			return fmt.Errorf("timezone %q: no %s in the root filesystem (tzdata installed?)", r.Timezone, zone)
		}
		if err := guestSymlink(root, "/etc/localtime", zone); err != nil {
			return err
		}
	}
	if r.Getty != "" {
		if err := addGetty(root, r.Getty); err != nil {
			return err
		}
	}
	for _, svc := range r.Services {
		if !guestExists(root, "/etc/sv/"+svc+"/run") {
			return fmt.Errorf("service %q: no /etc/sv/%s in the root filesystem; add the package that ships it to the recipe's packages", svc, svc)
		}
		if err := guestSymlink(root, "/etc/runit/runsvdir/default/"+svc, "/etc/sv/"+svc); err != nil {
			return err
		}
	}
	var conf strings.Builder
	conf.WriteString("# Written by simple-uml from the recipe's repositories.\n")
	for _, repo := range repos {
		if fetch.IsURL(repo.URL) {
			fmt.Fprintf(&conf, "repository=%s\n", repo.URL)
		}
	}
	if err := writeGuestFile(root, "/etc/xbps.d/00-repository-main.conf", []byte(conf.String()), 0o644); err != nil {
		return err
	}
	if err := setRootPassword(root, r, epoch); err != nil {
		return err
	}
	if r.Overlay != "" {
		if err := copyOverlay(r.Overlay, root); err != nil {
			return fmt.Errorf("overlay %s: %w", r.Overlay, err)
		}
	}
	return nil
}

// addFstab makes /dev/ubda the root file system unless fstab already mounts something on /.
func addFstab(root *os.Root) error {
	old, err := guestReadFile(root, "/etc/fstab")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, line := range strings.Split(string(old), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && !strings.HasPrefix(f[0], "#") && f[1] == "/" {
			return nil
		}
	}
	text := string(old)
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	text += "/dev/ubda  /  ext4  rw,relatime  0 1\n"
	return writeGuestFile(root, "/etc/fstab", []byte(text), 0o644)
}

// addGetty enables a login prompt on the console device (UML's con0 is tty0). Void's runit-void
// ships agetty-tty1..6; for another device a service of the same shape is written.
func addGetty(root *os.Root, tty string) error {
	svc := "agetty-" + tty
	if !guestExists(root, "/etc/sv/"+svc+"/run") {
		run := fmt.Sprintf(`#!/bin/sh
# Written by simple-uml: a login prompt on %[1]s (UML's console con0 is tty0).
if command -v agetty >/dev/null 2>&1; then
	exec setsid agetty --noclear %[1]s 38400 linux
fi
exec setsid getty 38400 %[1]s linux
`, tty)
		if err := writeGuestFile(root, "/etc/sv/"+svc+"/run", []byte(run), 0o755); err != nil {
			return err
		}
	}
	return guestSymlink(root, "/etc/runit/runsvdir/default/"+svc, "/etc/sv/"+svc)
}

// copyOverlay copies a folder over the tree: regular files, symlinks and directories with their
// modes. It refuses to write through a symlink of the tree.
func copyOverlay(src string, root *os.Root) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		guest := "/" + filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			dst := filepath.ToSlash(rel)
			if err := xbps.MkParents(root, dst); err != nil {
				return err
			}
			st, err := root.Lstat(dst)
			if errors.Is(err, fs.ErrNotExist) {
				if err := root.Mkdir(dst, 0o755); err != nil {
					return err
				}
			} else if err != nil {
				return err
			} else if !st.IsDir() {
				return fmt.Errorf("%s: a directory in the overlay, not one in the root filesystem", guest)
			}
			return root.Chmod(dst, fi.Mode().Perm()|fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return guestSymlink(root, guest, target)
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return writeGuestFile(root, guest, data, fi.Mode().Perm()|fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
		}
		return fmt.Errorf("%s: only files, folders and symlinks are copied from an overlay", guest)
	})
}

// writeConfigure writes the init of the configure boot: it runs every INSTALL script's pre actions,
// then its post actions, in install order, removes itself and powers off. That is what xbps-install
// does, and what Void's mkrootfs leaves: it installs without scripts and runs `xbps-reconfigure -a`,
// which configures each package once (base-files first, as here). A second post pass (the old
// `xbps-reconfigure -fa`) changed nothing on the Void fixture and took half the boot.
// SOURCE_DATE_EPOCH is the packages' newest time, for the tools that honour it (shadow's password
// dates, for one).
func writeConfigure(root *os.Root, scripts []Script, epoch time.Time) error {
	if !guestExists(root, "/bin/sh") {
		return errors.New("the packages install no /bin/sh, which INSTALL scripts need: add a shell (dash, bash or busybox) to the recipe's packages")
	}
	var b strings.Builder
	b.WriteString(`#!/bin/sh
# Written by simple-uml. init of a one-off "configure boot": runs the packages' INSTALL scripts as
# root of the guest (what xbps-install does), then powers off. It removes itself.
PATH=/usr/bin:/usr/sbin:/bin:/sbin
SOURCE_DATE_EPOCH=` + strconv.FormatInt(epoch.Unix(), 10) + `
export PATH SOURCE_DATE_EPOCH
umask 022
cd /
mount -t proc proc /proc 2>/dev/null
off() {
	sync
	[ -w /proc/sysrq-trigger ] && { echo u >/proc/sysrq-trigger; echo o >/proc/sysrq-trigger; }
	poweroff -f
	sleep 60
}
fail() {
	echo "` + ConfigureFailed + `: $*"
	off
}
step() {
	read -r up _ </proc/uptime
	echo "` + ConfigureStep + ` $2 $3-$4 at ${up}s"
	/bin/sh "$1" "$2" "$3" "$4" no no "$5" </dev/null || fail "INSTALL $2 of $3-$4 exited with status $?"
}
`)
	for _, ph := range []struct{ action, comment string }{
		{"pre", "xbps-install: pre actions"},
		{"post", "xbps-install: configure (post actions)"},
	} {
		fmt.Fprintf(&b, "# %s\n", ph.comment)
		for _, s := range scripts {
			fmt.Fprintf(&b, "step %s %s %s %s %s\n", run.Quote(s.Path), ph.action, run.Quote(s.Pkgname), run.Quote(s.Version), run.Quote(s.Arch))
		}
	}
	b.WriteString(`read -r up _ </proc/uptime
echo "` + ConfigureStep + ` done at ${up}s"
rm -rf ` + scriptDir + `
echo ` + ConfigureOK + `
off
`)
	return writeGuestFile(root, ConfigureInit, []byte(b.String()), 0o700)
}

// guestExists reports whether a guest path exists, following symlinks as the guest would: an
// absolute target is resolved inside the tree, never on the host.
func guestExists(root *os.Root, guestPath string) bool {
	_, err := guestResolve(root, guestPath)
	return err == nil
}

// guestReadFile reads a file of the tree at a guest path, its symlinks resolved as the guest would.
func guestReadFile(root *os.Root, guestPath string) ([]byte, error) {
	rel, err := guestResolve(root, guestPath)
	if err != nil {
		return nil, err
	}
	return root.ReadFile(rel)
}

// guestResolve resolves a guest path in the tree, symlinks included, as the guest's kernel would:
// ".." stops at the root and an absolute target starts again from it. It returns the path, relative
// to the root, of what it names, which holds no symlink; fs.ErrNotExist when it names nothing.
func guestResolve(root *os.Root, guestPath string) (string, error) {
	parts := strings.Split(strings.Trim(guestPath, "/"), "/")
	cur := []string{}
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
			}
			continue
		}
		rel := strings.Join(append(cur, part), "/")
		fi, err := root.Lstat(rel)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = append(cur, part)
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", guestPath)
		}
		target, err := root.Readlink(rel)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			cur = cur[:0]
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	if len(cur) == 0 {
		return ".", nil
	}
	return strings.Join(cur, "/"), nil
}

// setRootPassword writes root's password hash into /etc/shadow (made from /etc/passwd first, as
// pwconv would, when the packages ship none). A plain password is hashed here with SHA-512 crypt,
// so it never enters the image; the salt comes from the recipe, so the image stays reproducible.
func setRootPassword(root *os.Root, r *Recipe, epoch time.Time) error {
	hash := r.RootPasswdHash
	if r.RootPassword != "" {
		digest, err := r.Digest()
		if err != nil {
			return err
		}
		salt := "$6$" + saltFrom(digest)
		if hash, err = sha512_crypt.New().Generate([]byte(r.RootPassword), []byte(salt)); err != nil {
			return fmt.Errorf("hash the root password: %w", err)
		}
	}
	if hash == "" {
		return nil
	}
	shadow, err := guestReadFile(root, "/etc/shadow")
	if errors.Is(err, fs.ErrNotExist) {
		passwd, err := guestReadFile(root, "/etc/passwd")
		if err != nil {
			return fmt.Errorf("root password: the packages install no /etc/passwd (base-files?): %w", err)
		}
		days := epoch.Unix() / 86400
		var b strings.Builder
		for _, line := range strings.Split(strings.TrimSpace(string(passwd)), "\n") {
			if name, _, ok := strings.Cut(line, ":"); ok {
				fmt.Fprintf(&b, "%s:*:%d:0:99999:7:::\n", name, days)
			}
		}
		shadow = []byte(b.String())
	} else if err != nil {
		return err
	}
	lines := strings.Split(string(shadow), "\n")
	found := false
	for i, line := range lines {
		f := strings.Split(line, ":")
		if len(f) >= 2 && f[0] == "root" {
			f[1] = hash
			lines[i] = strings.Join(f, ":")
			found = true
		}
	}
	if !found {
		return errors.New("root password: /etc/shadow has no root entry")
	}
	return writeGuestFile(root, "/etc/shadow", []byte(strings.Join(lines, "\n")), 0o600)
}

// saltFrom takes 16 crypt-alphabet characters from a hex digest.
func saltFrom(digest string) string {
	const alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b strings.Builder
	for i := 0; i+4 <= len(digest) && b.Len() < 16; i += 4 {
		n, _ := strconv.ParseUint(digest[i:i+4], 16, 32)
		b.WriteByte(alphabet[n%64])
	}
	return b.String()
}

// ScriptTime is how long one action of one package's INSTALL script took in a configure boot.
type ScriptTime struct {
	Action, Pkgver string
	Took           time.Duration
}

// ScriptTimes reads the configure boot's console for the times of its scripts, slowest first: each
// step's line gives the guest's uptime when it began, and the next line ends it.
func ScriptTimes(console string) []ScriptTime {
	var out []ScriptTime
	var last *ScriptTime
	var lastAt float64
	for _, line := range strings.Split(console, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), ConfigureStep+" ")
		if !ok {
			continue
		}
		f := strings.Fields(rest) // "post pkg-1.0_1 at 12.34s" or "done at 56.78s"
		if len(f) < 2 || f[len(f)-2] != "at" {
			continue
		}
		at, err := strconv.ParseFloat(strings.TrimSuffix(f[len(f)-1], "s"), 64)
		if err != nil {
			continue
		}
		if last != nil && at >= lastAt {
			last.Took = time.Duration((at - lastAt) * float64(time.Second))
			out = append(out, *last)
		}
		last, lastAt = nil, at
		if len(f) == 4 {
			last = &ScriptTime{Action: f[0], Pkgver: f[1]}
		}
	}
	slices.SortStableFunc(out, func(a, b ScriptTime) int { return cmp.Compare(b.Took, a.Took) })
	return out
}
