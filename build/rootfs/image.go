package rootfs

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/simple-uml/simple-uml/build/run"
	"github.com/simple-uml/simple-uml/build/uml"
)

// ImageOptions describe the ext4 image made from a staged tree.
type ImageOptions struct {
	Size   int64  // bytes; the file is sparse
	UUID   string // file system UUID, also its directory hash seed, so the image depends only on inputs
	Label  string
	Epoch  time.Time
	Owners map[string]string // guest path -> "uid:gid" for files not owned by root
	Modes  map[string]uint32 // guest path -> permission bits, for a tree whose own modes cannot be trusted
	Log    io.Writer         // command lines and tool output
}

// MakeImage writes an ext4 image of tree with every file owned by root (or the owner its package
// gives), modes and setuid bits kept, without root rights: mke2fs -d runs under fakeroot after a
// faked chown. Times are pinned: modification times after Epoch become Epoch, and access and change
// times (which mke2fs copies from the host) are set to Epoch afterwards, so the image depends only on
// the tree. It needs fakeroot and e2fsprogs.
func MakeImage(ctx context.Context, tree, img string, o ImageOptions) error {
	tmp, err := os.MkdirTemp(filepath.Dir(img), ".owners-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	dirs, err := clampTimes(tree, o.Epoch)
	if err != nil {
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
		script += fmt.Sprintf("xargs -0 -r %s < %s || exit 1\n", cmd, shQuote(list))
		return nil
	}
	byOwner := map[string][]string{}
	for p, owner := range o.Owners {
		byOwner[owner] = append(byOwner[owner], "."+p)
	}
	for _, owner := range slices.Sorted(maps.Keys(byOwner)) {
		if err := each("chown -h "+owner, byOwner[owner]); err != nil {
			return err
		}
	}
	byMode := map[string][]string{}
	for p, mode := range o.Modes {
		byMode[fmt.Sprintf("%04o", mode&0o7777)] = append(byMode[fmt.Sprintf("%04o", mode&0o7777)], "."+p)
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
	script += fmt.Sprintf("exec mke2fs -q -F -t ext4 -d . -L %s -U %s -E hash_seed=%s,root_owner=0:0 -I 256 -m 1 %s %dk\n",
		shQuote(label), o.UUID, o.UUID, shQuote(img), o.Size/1024)
	env := []string{fmt.Sprintf("E2FSPROGS_FAKE_TIME=%d", o.Epoch.Unix()), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", o.Epoch.Unix())}
	err = run.Run(ctx, run.Cmd{Args: []string{"fakeroot", "--", "sh", "-c", script}, Dir: tree, Env: env, Log: o.Log, Echo: o.Log})
	if err == nil {
		err = pinInodeTimes(ctx, img, dirs, o.Epoch)
	}
	if err != nil {
		os.Remove(img)
		return fmt.Errorf("make the ext4 image: %w", err)
	}
	return nil
}

// clampTimes sets every modification time in tree that is later than epoch to epoch (the
// SOURCE_DATE_EPOCH rule) and returns the tree's directories as guest paths.
func clampTimes(tree string, epoch time.Time) (dirs []string, err error) {
	ts := []unix.Timespec{unix.NsecToTimespec(epoch.UnixNano()), unix.NsecToTimespec(epoch.UnixNano())}
	err = filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		guest := "/" + strings.TrimPrefix(filepath.ToSlash(rel), ".")
		if d.IsDir() {
			dirs = append(dirs, guest)
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
	return dirs, err
}

// pinInodeTimes sets the access and change time of every inode of img to epoch in one debugfs
// session: mke2fs -d copies them from the host, where reading and chown change them.
func pinInodeTimes(ctx context.Context, img string, dirs []string, epoch time.Time) error {
	meta, err := listInodes(ctx, img, append(dirs, "/lost+found"))
	if err != nil {
		return err
	}
	inos := map[uint64]bool{2: true} // the root directory
	for _, m := range meta {
		inos[m.ino] = true
	}
	var cmds strings.Builder
	for _, ino := range slices.Sorted(maps.Keys(inos)) {
		for _, field := range []string{"atime", "ctime"} {
			fmt.Fprintf(&cmds, "sif <%d> %s @%d\n", ino, field, epoch.Unix())
		}
	}
	env := []string{fmt.Sprintf("E2FSPROGS_FAKE_TIME=%d", epoch.Unix())}
	out, err := debugfsScript(ctx, img, cmds.String(), true, env)
	if err != nil {
		return fmt.Errorf("pin inode times: %w", err)
	}
	// debugfs reports a failed command on its output and still exits 0.
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "sif:") || strings.Contains(line, "set_inode_field:") {
			return fmt.Errorf("pin inode times: debugfs: %s", line)
		}
	}
	return nil
}

// Reimage writes out, a new image of the file system in img with the same contents, owners, modes
// and hard links, made as MakeImage makes images. A configure boot leaves the guest's clock in the
// superblock, the journal and the times of files the scripts wrote; the image that ships is made again
// from what the boot configured, so it depends only on the inputs.
func Reimage(ctx context.Context, img, out string, o ImageOptions) error {
	dump, meta, cleanup, err := dumpImage(ctx, img, filepath.Dir(out), ".reimage-")
	if err != nil {
		return err
	}
	defer cleanup()
	os.RemoveAll(filepath.Join(dump, "lost+found")) // mke2fs makes its own
	o.Owners, o.Modes = map[string]string{}, map[string]uint32{}
	firstPath := map[uint64]string{}
	for _, p := range slices.Sorted(maps.Keys(meta)) {
		m := meta[p]
		if p == "/lost+found" || strings.HasPrefix(p, "/lost+found/") {
			continue
		}
		if m.uid != 0 || m.gid != 0 {
			o.Owners[p] = fmt.Sprintf("%d:%d", m.uid, m.gid)
		}
		switch m.mode & 0o170000 {
		case 0o120000: // a symlink's mode means nothing, and chmod would follow it
			continue
		case 0o100000:
			// rdump writes each name of a hard-linked file as a copy: link them again.
			if first, ok := firstPath[m.ino]; ok {
				host := filepath.Join(dump, filepath.FromSlash(p))
				if err := os.Remove(host); err != nil {
					return err
				}
				if err := os.Link(filepath.Join(dump, filepath.FromSlash(first)), host); err != nil {
					return err
				}
				continue
			}
			firstPath[m.ino] = p
		}
		o.Modes[p] = m.mode & 0o7777
	}
	return MakeImage(ctx, dump, out, o)
}

// dumpImage copies the file system in img into a new folder in parent with debugfs's rdump and
// returns the folder, every entry's metadata by guest path, and what removes the folder. Entries are
// left readable and writable by the caller (rdump as an ordinary user cannot give them their owners;
// their modes are in the metadata).
func dumpImage(ctx context.Context, img, parent, prefix string) (dir string, meta map[string]inode, cleanup func(), err error) {
	if dir, err = os.MkdirTemp(parent, prefix); err != nil {
		return "", nil, nil, err
	}
	cleanup = func() { RemoveDump(dir) }
	if meta, err = readImage(ctx, img, dir); err != nil {
		cleanup()
		return "", nil, nil, err
	}
	return dir, meta, cleanup, nil
}

func readImage(ctx context.Context, img, dir string) (map[string]inode, error) {
	if _, err := run.Output(ctx, run.Cmd{Args: []string{"debugfs", "-R", "rdump / " + dir, img}}); err != nil {
		return nil, fmt.Errorf("read the image: %w", err)
	}
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			os.Chmod(p, 0o700)
			rel, _ := filepath.Rel(dir, p)
			dirs = append(dirs, "/"+strings.TrimPrefix(filepath.ToSlash(rel), "."))
		} else if d.Type().IsRegular() {
			os.Chmod(p, 0o600)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return listInodes(ctx, img, dirs)
}

// RemoveDump removes a folder dumped from an image, whose directories may be read-only (RemoveAll
// cannot empty them as an ordinary user).
func RemoveDump(dir string) error {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// ConfigureBoot boots img with kernel, its init the configure script Stage wrote, and checks that
// every INSTALL script succeeded. The image is changed in place.
func ConfigureBoot(ctx context.Context, kernel, img string, timeout time.Duration, log io.Writer) (uml.Result, error) {
	res, err := uml.Boot(ctx, uml.Options{Kernel: kernel, Image: img, Init: ConfigureInit, Mem: "256M", Timeout: timeout})
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

// inode is what debugfs's `ls -p` says of a directory entry.
type inode struct {
	ino      uint64
	mode     uint32
	uid, gid int
}

// Tarball writes a tar of the file system in img: contents come from debugfs's rdump, owners and
// modes from its `ls -p` (rdump cannot chown as a non-root user). Entries are sorted, times are
// epoch, hard links are kept. lost+found is left out.
func Tarball(ctx context.Context, img string, w io.Writer, epoch time.Time) error {
	dump, meta, cleanup, err := dumpImage(ctx, img, filepath.Dir(img), ".rdump-")
	if err != nil {
		return err
	}
	defer cleanup()
	paths := make([]string, 0, len(meta))
	for p := range meta {
		if p != "/lost+found" && !strings.HasPrefix(p, "/lost+found/") {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	firstPath := map[uint64]string{}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := meta[p]
		name := "." + p
		hdr := &tar.Header{Name: name, Mode: int64(m.mode & 0o7777), Uid: m.uid, Gid: m.gid, ModTime: epoch, Format: tar.FormatPAX}
		host := filepath.Join(dump, filepath.FromSlash(p))
		switch m.mode & 0o170000 {
		case 0o040000:
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		case 0o120000:
			target, err := os.Readlink(host)
			if err != nil {
				return fmt.Errorf("image %s: symlink %s: %w", img, p, err)
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		case 0o010000:
			hdr.Typeflag = tar.TypeFifo
		case 0o100000:
			if first, ok := firstPath[m.ino]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, "."+first
				break
			}
			firstPath[m.ino] = p
			hdr.Typeflag = tar.TypeReg
		default:
			return fmt.Errorf("image %s: %s is a device node or socket (mode %o); the tarball cannot carry it", img, p, m.mode)
		}
		var f *os.File
		if hdr.Typeflag == tar.TypeReg {
			if f, err = os.Open(host); err != nil {
				return fmt.Errorf("image %s: %s: %w", img, p, err)
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return err
			}
			hdr.Size = fi.Size()
		}
		if err := tw.WriteHeader(hdr); err != nil {
			if f != nil {
				f.Close()
			}
			return err
		}
		if f != nil {
			_, err := io.Copy(tw, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("tar %s: %w", p, err)
			}
		}
	}
	return tw.Close()
}

// listInodes runs `ls -p` on every directory in one debugfs session and returns the metadata of
// every entry by guest path ("/" included).
func listInodes(ctx context.Context, img string, dirs []string) (map[string]inode, error) {
	var cmds strings.Builder
	for _, d := range dirs {
		if strings.ContainsAny(d, "\"\n") {
			return nil, fmt.Errorf("image %s: the path %q cannot be passed to debugfs", img, d)
		}
		fmt.Fprintf(&cmds, "ls -p \"%s\"\n", d)
	}
	out, err := debugfsScript(ctx, img, cmds.String(), false, nil)
	if err != nil {
		return nil, fmt.Errorf("list the image: %w", err)
	}
	meta := map[string]inode{}
	cur := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "debugfs: ls -p "); ok {
			cur = strings.Trim(rest, "\"")
			continue
		}
		// /ino/mode/uid/gid/name/size/
		f := strings.Split(line, "/")
		if len(f) != 8 || f[0] != "" {
			continue
		}
		name := f[5]
		if name == "." && cur == "/" {
			name = ""
		} else if name == "." || name == ".." {
			continue
		}
		ino, err1 := strconv.ParseUint(f[1], 10, 64)
		mode, err2 := strconv.ParseUint(f[2], 8, 32)
		uid, err3 := strconv.Atoi(f[3])
		gid, err4 := strconv.Atoi(f[4])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return nil, fmt.Errorf("image %s: unexpected debugfs line %q", img, line)
		}
		p := strings.TrimSuffix(cur, "/") + "/" + name
		if name == "" {
			p = "/"
		}
		meta[p] = inode{ino: ino, mode: uint32(mode), uid: uid, gid: gid}
	}
	if _, ok := meta["/"]; !ok {
		return nil, fmt.Errorf("image %s: debugfs listed no root directory", img)
	}
	delete(meta, "/")
	return meta, nil
}

// debugfsScript runs debugfs's commands on img in one session (write: opened read-write).
func debugfsScript(ctx context.Context, img, commands string, write bool, env []string) (string, error) {
	f, err := os.CreateTemp("", "simple-uml-debugfs-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(commands); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	args := []string{"debugfs"}
	if write {
		args = append(args, "-w")
	}
	return run.Output(ctx, run.Cmd{Args: append(args, "-f", f.Name(), img), Env: env})
}
