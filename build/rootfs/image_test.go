package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needImageTools skips on a machine without fakeroot and e2fsprogs, except in CI (SUML_E2E=1), where
// they are installed and the test must run.
func needImageTools(t *testing.T) {
	for _, tool := range []string{"fakeroot", "mke2fs", "debugfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("SUML_E2E") == "1" {
				t.Fatalf("%s is missing (apt-get install fakeroot e2fsprogs)", tool)
			}
			t.Skipf("%s is missing", tool)
		}
	}
}

// imageTree writes a small guest tree with what images must keep: owners, setuid, a hard link, a
// symlink, a read-only folder, and times before and after the epoch.
func imageTree(t *testing.T, epoch time.Time) (string, map[string]string) {
	t.Helper()
	tree := t.TempDir()
	for _, d := range []string{"etc", "usr/bin", "home/u", "var/empty"} {
		os.MkdirAll(filepath.Join(tree, d), 0o755)
	}
	os.WriteFile(filepath.Join(tree, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(tree, "usr/bin/su"), []byte("su binary"), 0o755)
	os.Chmod(filepath.Join(tree, "usr/bin/su"), 0o755|os.ModeSetuid)
	os.WriteFile(filepath.Join(tree, "usr/bin/a"), []byte("linked"), 0o755)
	os.Link(filepath.Join(tree, "usr/bin/a"), filepath.Join(tree, "usr/bin/b"))
	os.Symlink("usr/bin", filepath.Join(tree, "bin"))
	os.WriteFile(filepath.Join(tree, "home/u/notes"), []byte("mine"), 0o600)
	os.Chtimes(filepath.Join(tree, "etc/passwd"), epoch.Add(-time.Hour), epoch.Add(-time.Hour))
	os.Chmod(filepath.Join(tree, "var/empty"), 0o555)
	return tree, map[string]string{"/home/u": "1000:1000", "/home/u/notes": "1000:1000"}
}

// guestXattrs are what packages' scripts set in a configure boot: a file capability (setcap
// cap_net_raw+ep), an ACL with a named user, a default ACL on a folder, a user attribute, and one
// too large for the inode, which ext4 puts in a block of its own.
var guestXattrs = map[string][]Xattr{
	"/usr/bin/a": {{"security.capability", []byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}},
	"/home/u/notes": {
		// the mask agrees with the file's mode, 0600, as the kernel keeps it
		{"system.posix_acl_access", acl(t4(1, 6, -1), t4(2, 6, 1000), t4(4, 4, -1), t4(0x10, 0, -1), t4(0x20, 0, -1))},
		{"user.big", bytes.Repeat([]byte("x"), 700)},
		{"user.note", []byte("hello\x00world")},
	},
	"/var/empty": {{"system.posix_acl_default", acl(t4(1, 7, -1), t4(4, 5, -1), t4(0x20, 5, -1))}},
	"/":          {{"user.root", []byte("the root directory's own")}},
}

// acl is a POSIX ACL in getxattr's form (version 2) of entries made by t4.
func acl(entries ...[]byte) []byte { return append([]byte{2, 0, 0, 0}, bytes.Join(entries, nil)...) }

func t4(tag, perm uint16, id int32) []byte {
	return []byte{byte(tag), byte(tag >> 8), byte(perm), byte(perm >> 8), byte(id), byte(id >> 8), byte(id >> 16), byte(id >> 24)}
}

// configure changes an image as a boot does: a file written at the host's time, a mount recorded,
// extended attributes set.
func configure(t *testing.T, img string) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "hostname")
	os.WriteFile(src, []byte("guest\n"), 0o644)
	script := "write " + src + " /etc/hostname\nssv mtime now\nssv mnt_count 3\n"
	// What a package script may generate that is one instance's own.
	script += "mkdir /etc/ssh\nwrite " + src + " /etc/ssh/ssh_host_ed25519_key\nwrite " + src + " /etc/machine-id\n"
	for path, xs := range guestXattrs {
		for i, x := range xs {
			value := filepath.Join(dir, fmt.Sprintf("x%d%s", i, strings.ReplaceAll(path, "/", "_")))
			os.WriteFile(value, x.Value, 0o644)
			script += fmt.Sprintf("ea_set -f %s %s %s\n", value, path, x.Name)
		}
	}
	cmd := exec.Command("debugfs", "-w", "-f", "-", img)
	cmd.Stdin = bytes.NewBufferString(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
}

func TestImagesDependOnlyOnTheTree(t *testing.T) {
	needImageTools(t)
	epoch := time.Unix(1732000000, 0)
	ctx := context.Background()
	dir := t.TempDir()
	opts := ImageOptions{Size: 8 << 20, UUID: "01234567-89ab-4def-8123-456789abcdef", Label: "t", Epoch: epoch, Log: io.Discard}
	var images, reimages [2]string
	for i := range images {
		tree, owners := imageTree(t, epoch)
		os.WriteFile(filepath.Join(tree, "etc/new"), []byte("written now"), 0o644) // mtime: now, after the epoch
		opts.Owners = owners
		images[i] = filepath.Join(dir, "img"+string(rune('0'+i)))
		if err := MakeImage(ctx, tree, images[i], opts); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			time.Sleep(1100 * time.Millisecond) // host times move on between the two
		}
	}
	if !sameFile(t, images[0], images[1]) {
		t.Fatal("two images of equal trees made a second apart differ")
	}
	for i := range reimages {
		configure(t, images[i])
		reimages[i] = images[i] + ".re"
		opts.Owners = nil
		if err := Reimage(ctx, images[i], reimages[i], opts); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			time.Sleep(1100 * time.Millisecond)
		}
	}
	if sameFile(t, images[0], images[1]) {
		t.Fatal("the configure step left no trace to remove; the test proves nothing")
	}
	if !sameFile(t, reimages[0], reimages[1]) {
		t.Fatal("images made again from two configured images differ")
	}
	// The new image holds what the configured one held.
	var buf bytes.Buffer
	if err := Tarball(ctx, reimages[0], &buf, epoch); err != nil {
		t.Fatal(err)
	}
	got := tarHeaders(t, buf.Bytes())
	checks := []struct {
		name string
		ok   func(h *tar.Header) bool
	}{
		{"./usr/bin/su", func(h *tar.Header) bool { return h.Mode == 0o4755 && h.Uid == 0 }},
		{"./home/u/notes", func(h *tar.Header) bool { return h.Mode == 0o600 && h.Uid == 1000 && h.Gid == 1000 }},
		{"./usr/bin/b", func(h *tar.Header) bool { return h.Typeflag == tar.TypeLink && h.Linkname == "./usr/bin/a" }},
		{"./bin", func(h *tar.Header) bool { return h.Typeflag == tar.TypeSymlink && h.Linkname == "usr/bin" }},
		{"./var/empty/", func(h *tar.Header) bool { return h.Mode == 0o555 }},
		{"./etc/hostname", func(h *tar.Header) bool { return h.Size == 6 }},
		{"./etc/ssh/", func(h *tar.Header) bool { return h.Typeflag == tar.TypeDir }},
	}
	for _, name := range []string{"./etc/ssh/ssh_host_ed25519_key", "./etc/machine-id"} {
		if _, ok := got[name]; ok {
			t.Errorf("%s, one instance's own, is in the image made again", name)
		}
	}
	for _, c := range checks {
		if h, ok := got[c.name]; !ok || !c.ok(h) {
			t.Errorf("%s: %+v", c.name, h)
		}
	}
	checkTarXattrs(t, got)
	checkGNUTarRestores(t, buf.Bytes())
}

// checkGNUTarRestores extracts the tarball with GNU tar --xattrs and reads the attributes back from
// the host's files: all of them as root, the user.* ones otherwise (only root may set the others).
func checkGNUTarRestores(t *testing.T, tarball []byte) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("tar", "--xattrs", "--xattrs-include=*", "-xpf", "-", "-C", dir)
	cmd.Stdin = bytes.NewReader(tarball)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GNU tar: %v\n%s", err, out)
	}
	for path, xs := range guestXattrs {
		for _, x := range xs {
			if os.Geteuid() != 0 && !strings.HasPrefix(x.Name, "user.") {
				continue
			}
			buf := make([]byte, 4096)
			n, err := unix.Lgetxattr(filepath.Join(dir, path), x.Name, buf)
			if err != nil || !bytes.Equal(buf[:n], x.Value) {
				t.Errorf("GNU tar restored %s %s as %x (%v), want %x", path, x.Name, buf[:max(n, 0)], err, x.Value)
			}
		}
	}
}

// checkTarXattrs wants guestXattrs as GNU tar's --xattrs records, and nothing else.
func checkTarXattrs(t *testing.T, got map[string]*tar.Header) {
	t.Helper()
	seen := 0
	for name, h := range got {
		for k, v := range h.PAXRecords {
			x, ok := strings.CutPrefix(k, "SCHILY.xattr.")
			if !ok {
				continue
			}
			seen++
			path := strings.TrimSuffix(strings.TrimPrefix(name, "."), "/")
			if path == "" {
				path = "/"
			}
			i := slices.IndexFunc(guestXattrs[path], func(w Xattr) bool { return w.Name == x })
			if i < 0 || string(guestXattrs[path][i].Value) != v {
				t.Errorf("%s: %s=%q, not one the guest set", name, x, v)
			}
		}
	}
	want := 0
	for _, xs := range guestXattrs {
		want += len(xs)
	}
	if seen != want {
		t.Errorf("the tarball carries %d extended attributes, want %d", seen, want)
	}
}

func sameFile(t *testing.T, a, b string) bool {
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(da, db)
}

// TestImageLeavesTheWorkingFolderAlone: reading an image back dumped its directories into the
// current folder (which may be read-only, or hold names of its own).
func TestImageLeavesTheWorkingFolderAlone(t *testing.T) {
	needImageTools(t)
	cwd := t.TempDir()
	os.Mkdir(filepath.Join(cwd, "i2"), 0o755) // where the root directory's blocks went
	t.Chdir(cwd)
	tree, owners := imageTree(t, time.Unix(1732000000, 0))
	opts := ImageOptions{Size: 8 << 20, UUID: "01234567-89ab-4def-8123-456789abcdef", Label: "t", Epoch: time.Unix(1732000000, 0), Owners: owners, Log: io.Discard}
	if err := MakeImage(context.Background(), tree, filepath.Join(t.TempDir(), "img"), opts); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(cwd); len(entries) != 1 {
		t.Errorf("the working folder holds %v", entries)
	}
}

// TestImageFailsOnAttributesItCannotWrite: debugfs says a failed ea_set on stderr and exits 0; the
// image must not be made without the attribute.
func TestImageFailsOnAttributesItCannotWrite(t *testing.T) {
	needImageTools(t)
	tree, owners := imageTree(t, time.Unix(1732000000, 0))
	for _, x := range []Xattr{
		{"user.big", bytes.Repeat([]byte("x"), 9000)},      // more than a 1 KiB block holds
		{"system.posix_acl_access", []byte{2, 0, 0, 0, 1}}, // not an ACL
	} {
		opts := ImageOptions{Size: 8 << 20, UUID: "01234567-89ab-4def-8123-456789abcdef", Label: "t", Epoch: time.Unix(1732000000, 0),
			Owners: owners, Xattrs: map[string][]Xattr{"/etc/passwd": {x}}, Log: io.Discard}
		img := filepath.Join(t.TempDir(), "img")
		err := MakeImage(context.Background(), tree, img, opts)
		if err == nil || !strings.Contains(err.Error(), "ea_set") {
			t.Errorf("%s: %v, want debugfs's ea_set error", x.Name, err)
		}
		if _, serr := os.Stat(img); serr == nil {
			t.Errorf("%s: the image was left behind", x.Name)
		}
	}
}

// TestImageLeavesOutWhatOneInstanceOwns: host keys and a machine id in the tree (an overlay's, a
// package's) do not reach an image that many guests share, and the log says so.
func TestImageLeavesOutWhatOneInstanceOwns(t *testing.T) {
	needImageTools(t)
	tree, owners := imageTree(t, time.Unix(1732000000, 0))
	os.MkdirAll(filepath.Join(tree, "etc/ssh"), 0o755)
	for _, f := range []string{"etc/ssh/ssh_host_ed25519_key", "etc/ssh/sshd_config", "etc/machine-id", "etc/.pwd.lock"} {
		os.WriteFile(filepath.Join(tree, f), []byte("x\n"), 0o600)
	}
	owners["/etc/machine-id"] = "0:0"
	// An attribute of the host's on the tree is the host's, not the image's.
	hostXattr := unix.Setxattr(filepath.Join(tree, "etc/passwd"), "user.host", []byte("host"), 0) == nil
	var log bytes.Buffer
	g, _ := makeAndRead(t, tree, ImageOptions{Owners: owners, Log: &log})
	var paths []string
	for _, e := range g.Entries {
		paths = append(paths, e.Path)
	}
	for _, p := range []string{"/etc/ssh/ssh_host_ed25519_key", "/etc/machine-id", "/etc/.pwd.lock"} {
		if slices.Contains(paths, p) {
			t.Errorf("%s is in the image", p)
		}
		if !strings.Contains(log.String(), fmt.Sprintf("left out %q", p)) {
			t.Errorf("the log does not say %s was left out:\n%s", p, log.String())
		}
	}
	if !slices.Contains(paths, "/etc/ssh/sshd_config") {
		t.Error("sshd_config, every instance's, was left out too")
	}
	for _, e := range g.Entries {
		if len(e.Xattrs) > 0 {
			t.Errorf("%s has the host's attributes %v (set on the host: %v)", e.Path, e.Xattrs, hostXattr)
		}
	}
}

// TestImageAttributesBounded: a file's attributes count once however many links it has, a
// symlink's once per name, and the image's attributes together are bounded (a guest can point every
// inode at one attribute block).
func TestImageAttributesBounded(t *testing.T) {
	needImageTools(t)
	tree, owners := imageTree(t, time.Unix(1732000000, 0))
	for i := range 100 {
		os.Link(filepath.Join(tree, "etc/passwd"), filepath.Join(tree, fmt.Sprintf("etc/link%d", i)))
	}
	value := bytes.Repeat([]byte("v"), 700)
	g, img := makeAndRead(t, tree, ImageOptions{Owners: owners, Log: io.Discard,
		Xattrs: map[string][]Xattr{"/etc/passwd": {{"user.v", value}}, "/bin": {{"user.s", []byte("s")}}}})
	file, symlink := xattrCost+len("user.v")+len(value), xattrCost+len("user.s")+1
	if g.xattrBytes != file+symlink {
		t.Errorf("101 links to one file and a symlink count %d bytes of attributes, want %d", g.xattrBytes, file+symlink)
	}
	// A symlink with two names (a guest's debugfs can make one) becomes two symlinks when the image
	// is made again: it counts twice.
	debugfsOn(t, img, "ln /bin /bin2\nsif /bin links_count 2\n")
	twice, err := readGuestImage(context.Background(), img, t.TempDir(), "read-")
	if err != nil {
		t.Fatal(err)
	}
	defer twice.Close()
	if twice.xattrBytes != file+2*symlink {
		t.Errorf("a symlink with two names counts %d bytes of attributes, want %d", twice.xattrBytes-file, 2*symlink)
	}
	inodes, err := openInodeTable(img)
	if err != nil {
		t.Fatal(err)
	}
	defer inodes.Close()
	full := &guestImage{xattrBytes: maxImageXattrBytes - 100}
	e := imageEntry{Path: "/etc/passwd", Ino: g.Entries[slices.IndexFunc(g.Entries, func(e imageEntry) bool { return e.Path == "/etc/passwd" })].Ino}
	if err := full.decodeInode(inodes, &e); err == nil || !strings.Contains(err.Error(), "add up to more than") {
		t.Errorf("attributes past the image's bound: %v", err)
	}
}

// makeAndRead makes a small test image of tree (o's size, identity and epoch filled in) and reads it
// back as a guest's image is read; the test's end removes both.
func makeAndRead(t *testing.T, tree string, o ImageOptions) (*guestImage, string) {
	t.Helper()
	o.Size, o.UUID, o.Label, o.Epoch = 8<<20, "01234567-89ab-4def-8123-456789abcdef", "t", time.Unix(1732000000, 0)
	img := filepath.Join(t.TempDir(), "img")
	if err := MakeImage(context.Background(), tree, img, o); err != nil {
		t.Fatal(err)
	}
	g, err := readGuestImage(context.Background(), img, t.TempDir(), "read-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g, img
}

// debugfsOn runs debugfs commands on img read-write, as a guest root would change its own disk.
func debugfsOn(t *testing.T, img, script string) {
	t.Helper()
	cmd := exec.Command("debugfs", "-w", "-f", "-", img)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debugfs: %v\n%s", err, out)
	}
}

// TestGuestImageRefusals: what a guest root can write into its image that the reader must refuse
// rather than act on: a directory claiming more bytes than its blocks (debugfs would dump the
// difference as zeros onto the host's disk), and an ACL that says otherwise than the file's mode
// (the kernel applies neither in the guest; tar would put the ACL in force on extraction).
func TestGuestImageRefusals(t *testing.T) {
	needImageTools(t)
	wide := acl(t4(1, 7, -1), t4(4, 7, -1), t4(0x20, 7, -1))
	for _, c := range []struct {
		name, script, want string
	}{
		{"a directory's size inflated", "sif /var/empty size 67044352\n", "claims 67044352 bytes"},
		{"an ACL wider than the mode", "ea_set -f @wide /home/u system.posix_acl_access\nsif /home/u mode 040700\n", "disagrees with the mode 0700"},
		{"a default ACL on a file", "ea_set -f @wide /etc/passwd system.posix_acl_default\n", "default ACL on what is not a directory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tree, owners := imageTree(t, time.Unix(1732000000, 0))
			_, img := makeAndRead(t, tree, ImageOptions{Owners: owners, Log: io.Discard})
			value := filepath.Join(t.TempDir(), "wide")
			os.WriteFile(value, wide, 0o644)
			debugfsOn(t, img, strings.ReplaceAll(c.script, "@wide", value))
			g, err := readGuestImage(context.Background(), img, t.TempDir(), "read-")
			if err == nil {
				g.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// TestImageKeepsTheRootDirectory: the root directory's mode and owner come through Reimage as the
// guest left them (mke2fs -d would make it 0755 and root's).
func TestImageKeepsTheRootDirectory(t *testing.T) {
	needImageTools(t)
	tree, owners := imageTree(t, time.Unix(1732000000, 0))
	_, img := makeAndRead(t, tree, ImageOptions{Owners: owners, Log: io.Discard})
	debugfsOn(t, img, "sif <2> mode 040750\nsif <2> gid 5\n")
	out := filepath.Join(t.TempDir(), "re")
	opts := ImageOptions{Size: 8 << 20, UUID: "01234567-89ab-4def-8123-456789abcdef", Label: "t", Epoch: time.Unix(1732000000, 0), Log: io.Discard}
	if err := Reimage(context.Background(), img, out, opts); err != nil {
		t.Fatal(err)
	}
	g, err := readGuestImage(context.Background(), out, t.TempDir(), "read-")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Root.Mode != 0o040750 || g.Root.UID != 0 || g.Root.GID != 5 {
		t.Errorf("the root directory is %o %d:%d, want 40750 0:5", g.Root.Mode, g.Root.UID, g.Root.GID)
	}
}
