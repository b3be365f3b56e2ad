package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/klauspost/compress/zstd"
	"github.com/simple-uml/simple-uml/build/files"
	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/run"
	"github.com/simple-uml/simple-uml/build/uml"
)

// ImageOptions describe the ext4 image made from a staged tree.
type ImageOptions struct {
	Size   int64  // bytes; the file is sparse
	UUID   string // file system UUID, also its directory hash seed, so the image depends only on inputs
	Label  string
	Epoch  time.Time
	Owners map[string]string  // guest path -> "uid:gid" for files not owned by root
	Modes  map[string]uint32  // guest path -> permission bits, for a tree whose own modes cannot be trusted
	Xattrs map[string][]Xattr // guest path -> extended attributes, written with debugfs's ea_set
	Log    io.Writer          // command lines and tool output
}

// MakeImage writes an ext4 image of tree (less the files one instance owns, perInstance) with every
// file owned by root (or the owner its package gives), modes, setuid bits and the given extended
// attributes kept, without root rights: mke2fs -d runs under fakeroot after a faked chown. Times are
// pinned: modification times after Epoch become Epoch, and access and change times (which mke2fs
// copies from the host) are set to Epoch afterwards, so the image depends only on the tree. It needs
// fakeroot and e2fsprogs.
func MakeImage(ctx context.Context, tree, img string, o ImageOptions) error {
	tmp, err := os.MkdirTemp(filepath.Dir(img), ".owners-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := leaveOutPerInstance(tree, o.Log); err != nil {
		return err
	}
	if err := clampTimes(tree, o.Epoch); err != nil {
		return err
	}
	script := "chown -R 0:0 . || exit 1\n"
	lists := 0
	// xargs over a NUL-separated list in a file: any path, any number of them.
	each := func(cmd string, paths []string) error {
		sort.Strings(paths)
		list := filepath.Join(tmp, strconv.Itoa(lists))
		lists++
		if err := os.WriteFile(list, []byte(strings.Join(paths, "\x00")+"\x00"), 0o644); err != nil {
			return err
		}
		script += fmt.Sprintf("xargs -0 -r %s < %s || exit 1\n", cmd, run.Quote(list))
		return nil
	}
	byOwner := map[string][]string{}
	for p, owner := range o.Owners {
		if !PerInstance(p) && p != "/" { // left out above; the root's is set by finishInodes
			byOwner[owner] = append(byOwner[owner], "."+p)
		}
	}
	for _, owner := range slices.Sorted(maps.Keys(byOwner)) {
		if err := each("chown -h "+owner, byOwner[owner]); err != nil {
			return err
		}
	}
	byMode, err := modeLists(tree, o.Modes)
	if err != nil {
		return err
	}
	for _, mode := range slices.Sorted(maps.Keys(byMode)) {
		if err := each("chmod "+mode, byMode[mode]); err != nil {
			return err
		}
	}
	label := o.Label
	if len(label) > 16 {
		label = label[:16]
	}
	mke2fs, err := host.LookPath("mke2fs")
	if err != nil {
		return fmt.Errorf("mke2fs: %w (Debian/Ubuntu: apt-get install e2fsprogs)", err)
	}
	script += fmt.Sprintf("exec %s -q -F -t ext4 -d . -L %s -U %s -E hash_seed=%s,root_owner=0:0 -I 256 -m 1 %s %dk\n",
		run.Quote(mke2fs), run.Quote(label), o.UUID, o.UUID, run.Quote(img), o.Size/1024)
	env := []string{fmt.Sprintf("E2FSPROGS_FAKE_TIME=%d", o.Epoch.Unix()), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", o.Epoch.Unix())}
	err = run.Run(ctx, run.Cmd{Args: []string{"fakeroot", "--", "sh", "-c", script}, Dir: tree, Env: env, Log: o.Log, Echo: o.Log})
	if err == nil {
		err = finishInodes(ctx, img, tmp, o)
	}
	if err != nil {
		os.Remove(img)
		return fmt.Errorf("make the ext4 image: %w", err)
	}
	return nil
}

// modeLists groups the paths of modes by mode, leaving out symlinks: chmod follows them, and a link
// put where a package's setuid file was (by a later step) could point anywhere.
func modeLists(tree string, modes map[string]uint32) (map[string][]string, error) {
	root, err := os.OpenRoot(tree)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	byMode := map[string][]string{}
	for p, mode := range modes {
		if p == "/" {
			continue // finishInodes sets the root's
		}
		if fi, err := root.Lstat(strings.TrimPrefix(p, "/")); err != nil || fi.Mode()&fs.ModeSymlink != 0 {
			continue
		}
		m := fmt.Sprintf("%04o", mode&0o7777)
		byMode[m] = append(byMode[m], "."+p)
	}
	return byMode, nil
}

// clampTimes sets every modification time in tree that is later than epoch to epoch (the
// SOURCE_DATE_EPOCH rule).
func clampTimes(tree string, epoch time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(epoch.UnixNano()), unix.NsecToTimespec(epoch.UnixNano())}
	return filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.ModTime().After(epoch) {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("set the time of %s: %w", p, err)
			}
		}
		return nil
	})
}

// finishInodes writes the extended attributes of o.Xattrs into img, gives the root directory the
// mode and owner o names for "/", and sets the access and change time of every inode to o.Epoch, in
// one debugfs session. mke2fs -d copies times from the host, where reading and chown change them, and
// makes the root 0755 and root's; it copies no attributes from the tree under fakeroot (whose
// listxattr answers with its own, empty list), so those the image must carry are put straight in.
func finishInodes(ctx context.Context, img, work string, o ImageOptions) error {
	// The image was made from a tree of package contents: its names are read as a guest's are, with
	// work (a private folder) for debugfs's dumps of its directories.
	g := &guestImage{dir: work}
	if err := g.walk(ctx, img); err != nil {
		return fmt.Errorf("set attributes and times: image %s: %w", img, err)
	}
	inos := map[uint64]bool{2: true} // the root directory
	var cmds strings.Builder
	if mode, ok := o.Modes["/"]; ok {
		fmt.Fprintf(&cmds, "sif <2> mode 0%o\n", 0o040000|mode&0o7777)
	}
	if owner, ok := o.Owners["/"]; ok {
		uid, gid, _ := strings.Cut(owner, ":")
		fmt.Fprintf(&cmds, "sif <2> uid %s\nsif <2> gid %s\n", uid, gid)
	}
	values := map[string]string{} // each distinct value is written once
	if err := setXattrs(&cmds, work, values, 2, o.Xattrs["/"]); err != nil {
		return fmt.Errorf("image %s: /: %w", img, err)
	}
	withXattrs := map[uint64]bool{}
	for _, e := range g.Entries {
		inos[e.Ino] = true
		// A file's links share its attributes: the first of its paths that has any gives them.
		if x := o.Xattrs[e.Path]; len(x) > 0 && !withXattrs[e.Ino] {
			withXattrs[e.Ino] = true
			if err := setXattrs(&cmds, work, values, e.Ino, x); err != nil {
				return fmt.Errorf("image %s: %s: %w", img, e.Path, err)
			}
		}
	}
	for _, ino := range slices.Sorted(maps.Keys(inos)) {
		for _, field := range []string{"atime", "ctime"} {
			fmt.Fprintf(&cmds, "sif <%d> %s @%d\n", ino, field, o.Epoch.Unix())
		}
	}
	env := []string{fmt.Sprintf("E2FSPROGS_FAKE_TIME=%d", o.Epoch.Unix())}
	if err := debugfsScript(ctx, img, cmds.String(), true, env); err != nil {
		return fmt.Errorf("set attributes and times: %w", err)
	}
	return nil
}

// setXattrs adds to cmds the ea_set commands that give inode ino its attributes. Each value goes
// through a file in work, named by its hash in values and written once, so any bytes pass; names
// were checked when they were read.
func setXattrs(cmds *strings.Builder, work string, values map[string]string, ino uint64, xattrs []Xattr) error {
	for _, x := range xattrs {
		if err := checkXattrName(x.Name); err != nil {
			return err
		}
		sum := sha256.Sum256(x.Value)
		file, ok := values[string(sum[:])]
		if !ok {
			file = filepath.Join(work, "xattr-"+hex.EncodeToString(sum[:16]))
			if err := os.WriteFile(file, x.Value, 0o600); err != nil {
				return err
			}
			values[string(sum[:])] = file
		}
		fmt.Fprintf(cmds, "ea_set -f %s <%d> %s\n", file, ino, x.Name)
	}
	return nil
}

// Reimage writes out, a new image of the file system in img with the same contents, owners, modes
// and hard links, made as MakeImage makes images. A configure boot leaves the guest's clock in the
// superblock, the journal and the times of files the scripts wrote; the image that ships is made again
// from what the boot configured, so it depends only on the inputs. img was written by a guest: it is
// read by readGuestImage and its tree is laid out through an os.Root of a private folder.
func Reimage(ctx context.Context, img, out string, o ImageOptions) error {
	g, err := readGuestImage(ctx, img, filepath.Dir(out), ".reimage-")
	if err != nil {
		return err
	}
	defer g.Close()
	root, err := os.OpenRoot(g.dir)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Mkdir("tree", 0o700); err != nil {
		return err
	}
	o.Owners, o.Modes, o.Xattrs = map[string]string{}, map[string]uint32{"/": g.Root.Mode & 0o7777}, map[string][]Xattr{}
	if len(g.Root.Xattrs) > 0 {
		o.Xattrs["/"] = g.Root.Xattrs
	}
	if g.Root.UID != 0 || g.Root.GID != 0 {
		o.Owners["/"] = fmt.Sprintf("%d:%d", g.Root.UID, g.Root.GID)
	}
	firstPath := map[uint64]string{}
	for _, e := range g.Entries {
		if e.Path == "/lost+found" || strings.HasPrefix(e.Path, "/lost+found/") {
			continue // mke2fs makes its own
		}
		if len(e.Xattrs) > 0 {
			o.Xattrs[e.Path] = e.Xattrs
		}
		if e.UID != 0 || e.GID != 0 {
			o.Owners[e.Path] = fmt.Sprintf("%d:%d", e.UID, e.GID)
		}
		name := "tree" + e.Path
		switch e.Mode & 0o170000 {
		case 0o040000:
			err = root.Mkdir(name, 0o700)
		case 0o100000:
			if first, ok := firstPath[e.Ino]; ok {
				err = root.Link("tree"+first, name)
			} else {
				firstPath[e.Ino] = e.Path
				err = root.Rename(filepath.Base(g.blob(e.Ino)), name)
			}
		case 0o120000:
			// A symlink's mode means nothing, and chmod would follow it.
			if err := root.Symlink(e.Target, name); err != nil {
				return fmt.Errorf("image %s: %s: %w", img, e.Path, err)
			}
			continue
		case 0o010000:
			err = mkfifoIn(root, name)
		default:
			return fmt.Errorf("image %s: %s is a device node or socket (mode %o); the image cannot be made again with it", img, e.Path, e.Mode)
		}
		if err != nil {
			return fmt.Errorf("image %s: %s: %w", img, e.Path, err)
		}
		o.Modes[e.Path] = e.Mode & 0o7777
	}
	return MakeImage(ctx, filepath.Join(g.dir, "tree"), out, o)
}

// perInstance are the files that identify one running system or hold its secrets: a package script
// in the configure boot may generate them (host keys, a machine id), a user may put them in an
// overlay, and an image shared by many guests must not carry them. Void's sshd service makes missing
// host keys at its start (ssh-keygen -A), dbus its machine id, and runit's stage 1 seeds the random
// pool without a saved seed.
var perInstance = []string{
	"/etc/ssh/ssh_host_*",
	"/etc/machine-id",
	"/var/lib/dbus/machine-id",
	"/var/lib/random-seed",
	"/var/lib/systemd/random-seed",
	"/etc/.pwd.lock", // shadow's lock file; Void's mkrootfs removes it too
}

// leaveOutPerInstance removes from tree the files of perInstance, whoever put them there (a package,
// the overlay, a script in the configure boot), and says which (log may be nil).
func leaveOutPerInstance(tree string, log io.Writer) error {
	root, err := os.OpenRoot(tree)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, pattern := range perInstance {
		dir := strings.TrimPrefix(path.Dir(pattern), "/")
		entries, err := fs.ReadDir(root.FS(), dir)
		if err != nil {
			continue // no such folder: nothing to leave out
		}
		for _, e := range entries {
			guestPath := "/" + dir + "/" + e.Name()
			if e.IsDir() || !PerInstance(guestPath) {
				continue
			}
			if err := root.Remove(strings.TrimPrefix(guestPath, "/")); err != nil {
				return err
			}
			if log != nil {
				fmt.Fprintf(log, "left out %q: each instance makes its own at its first boot\n", guestPath)
			}
		}
	}
	return nil
}

// PerInstance reports whether a guest path is one of perInstance.
func PerInstance(guestPath string) bool {
	return slices.ContainsFunc(perInstance, func(pattern string) bool {
		ok, _ := path.Match(pattern, guestPath)
		return ok
	})
}

// mkfifoIn makes a FIFO at name inside root; its parent is opened through root, so the name cannot
// lead outside it.
func mkfifoIn(root *os.Root, name string) error {
	parent, err := root.Open(filepath.Dir(name))
	if err != nil {
		return err
	}
	defer parent.Close()
	return unix.Mkfifoat(int(parent.Fd()), filepath.Base(name), 0o600)
}

// ConfigureMem is the configure boot's memory: fixed, not boot.mem, so that what the INSTALL
// scripts see (and so the image) does not depend on how the user boots.
const ConfigureMem = "256M"

// ConfigureBoot boots img with guest's kernel and sandbox, its init the configure script Stage
// wrote, and checks that every INSTALL script succeeded. The image is changed in place. The guest
// has no network and no host files, whatever guest says.
func ConfigureBoot(ctx context.Context, guest uml.Options, img string, log io.Writer) (uml.Result, error) {
	guest.Image, guest.Init, guest.Mem = img, ConfigureInit, ConfigureMem
	guest.Net, guest.Hostfs, guest.Args, guest.LANs = nil, "", nil, nil
	res, err := uml.RunUntilExit(ctx, guest)
	if log != nil {
		io.WriteString(log, res.Console)
	}
	if err != nil {
		return res, fmt.Errorf("configure boot: %w", err)
	}
	if i := strings.Index(res.Console, ConfigureFailed); i >= 0 {
		line, _, _ := strings.Cut(res.Console[i:], "\n")
		return res, fmt.Errorf("configure boot: %s\n%w", line, &uml.Error{Reason: "a package script failed", Console: res.Console})
	}
	if !strings.Contains(res.Console, ConfigureOK) {
		return res, fmt.Errorf("configure boot: %w", &uml.Error{Reason: "the guest powered off before configuring every package", Console: res.Console})
	}
	return res, nil
}

// Tarball writes a tar of the file system in img, read with readGuestImage (the image was written by a
// guest). Entries are sorted after "./", times are epoch, owners, modes and extended attributes are
// the image's, hard links are kept. lost+found is left out.
func Tarball(ctx context.Context, img string, w io.Writer, epoch time.Time) error {
	g, err := readGuestImage(ctx, img, filepath.Dir(img), ".rdump-")
	if err != nil {
		return err
	}
	defer g.Close()
	tw := tar.NewWriter(w)
	firstPath := map[uint64]string{}
	// The root directory first, as `tar -C root -c .` writes it: "./", with its mode and attributes.
	for _, e := range slices.Concat([]imageEntry{g.Root}, g.Entries) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Path == "/lost+found" || strings.HasPrefix(e.Path, "/lost+found/") {
			continue
		}
		name := "." + strings.TrimSuffix(e.Path, "/")
		hdr := &tar.Header{Name: name, Mode: int64(e.Mode & 0o7777), Uid: e.UID, Gid: e.GID, ModTime: epoch, Format: tar.FormatPAX}
		switch e.Mode & 0o170000 {
		case 0o040000:
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		case 0o120000:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Target
		case 0o010000:
			hdr.Typeflag = tar.TypeFifo
		case 0o100000:
			if first, ok := firstPath[e.Ino]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, "."+first
				break
			}
			firstPath[e.Ino] = e.Path
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.Size
		default:
			return fmt.Errorf("image %s: %s is a device node or socket (mode %o); the tarball cannot carry it", img, e.Path, e.Mode)
		}
		if len(e.Xattrs) > 0 && hdr.Typeflag != tar.TypeLink {
			// GNU tar's --xattrs records, ACLs included (bsdtar reads only its SCHILY.acl.* for those).
			hdr.PAXRecords = map[string]string{}
			for _, x := range e.Xattrs {
				hdr.PAXRecords["SCHILY.xattr."+x.Name] = string(x.Value)
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := files.Stream(tw, g.blob(e.Ino)); err != nil {
				return fmt.Errorf("tar %s: %w", e.Path, err)
			}
		}
	}
	return tw.Close()
}

// debugfsScript runs debugfs's commands on img in one session (write: opened read-write). debugfs
// exits 0 when a command fails and says so on stderr, where nothing else but its banner goes: any
// other line there is an error.
func debugfsScript(ctx context.Context, img, commands string, write bool, env []string) error {
	f, err := os.CreateTemp("", "simple-uml-debugfs-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(commands); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	debugfs, err := host.LookPath("debugfs")
	if err != nil {
		return fmt.Errorf("debugfs: %w (Debian/Ubuntu: apt-get install e2fsprogs)", err)
	}
	args := []string{debugfs}
	if write {
		args = append(args, "-w")
	}
	var stderr bytes.Buffer
	if err := run.Run(ctx, run.Cmd{Args: append(args, "-f", f.Name(), img), Env: env, Stderr: &stderr, Echo: io.Discard}); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" && !strings.HasPrefix(line, "debugfs ") {
			return fmt.Errorf("debugfs on %s: %s", img, line)
		}
	}
	return nil
}

// WriteTarballZstd writes Tarball of img to dst as a reproducible .tar.zst.
func WriteTarballZstd(ctx context.Context, image, dst string, epoch time.Time) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	// One encoder thread and a fixed level, so the same tree always compresses to the same bytes.
	zw, err := zstd.NewWriter(f, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return err
	}
	if err := Tarball(ctx, image, zw, epoch); err != nil {
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// UUIDFrom makes a version-4-shaped UUID from a hex digest, so the image's identity follows its inputs.
func UUIDFrom(key string) string {
	sum := sha256.Sum256([]byte(key))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
