package rootfs

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

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
	Log    io.Writer         // command lines and tool output
}

// MakeImage writes an ext4 image of tree with every file owned by root (or the owner its package
// gives), modes and setuid bits kept, without root rights: mke2fs -d runs under fakeroot after a
// faked chown. It needs fakeroot and e2fsprogs.
func MakeImage(ctx context.Context, tree, img string, o ImageOptions) error {
	tmp, err := os.MkdirTemp(filepath.Dir(img), ".owners-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	script := "chown -R 0:0 . || exit 1\n"
	byOwner := map[string][]string{}
	for p, owner := range o.Owners {
		byOwner[owner] = append(byOwner[owner], "."+p)
	}
	owners := make([]string, 0, len(byOwner))
	for owner := range byOwner {
		owners = append(owners, owner)
	}
	sort.Strings(owners)
	for i, owner := range owners {
		paths := byOwner[owner]
		sort.Strings(paths)
		list := filepath.Join(tmp, strconv.Itoa(i))
		if err := os.WriteFile(list, []byte(strings.Join(paths, "\x00")+"\x00"), 0o644); err != nil {
			return err
		}
		script += fmt.Sprintf("xargs -0 -r chown -h %s < %s || exit 1\n", owner, shQuote(list))
	}
	label := o.Label
	if len(label) > 16 {
		label = label[:16]
	}
	script += fmt.Sprintf("exec mke2fs -q -F -t ext4 -d . -L %s -U %s -E hash_seed=%s,root_owner=0:0 -I 256 -m 1 %s %dk\n",
		shQuote(label), o.UUID, o.UUID, shQuote(img), o.Size/1024)
	env := []string{fmt.Sprintf("E2FSPROGS_FAKE_TIME=%d", o.Epoch.Unix()), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", o.Epoch.Unix())}
	err = run.Run(ctx, run.Cmd{Args: []string{"fakeroot", "--", "sh", "-c", script}, Dir: tree, Env: env, Log: o.Log, Echo: o.Log})
	if err != nil {
		os.Remove(img)
		return fmt.Errorf("make the ext4 image: %w", err)
	}
	return nil
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
	dump, err := os.MkdirTemp(filepath.Dir(img), ".rdump-")
	if err != nil {
		return err
	}
	defer func() {
		filepath.WalkDir(dump, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o700) // let RemoveAll into directories dumped read-only
			}
			return nil
		})
		os.RemoveAll(dump)
	}()
	if _, err := run.Output(ctx, run.Cmd{Args: []string{"debugfs", "-R", "rdump / " + dump, img}}); err != nil {
		return fmt.Errorf("read the image: %w", err)
	}
	var dirs []string
	err = filepath.WalkDir(dump, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			os.Chmod(p, 0o700)
			rel, _ := filepath.Rel(dump, p)
			dirs = append(dirs, "/"+strings.TrimPrefix(filepath.ToSlash(rel), "."))
		}
		return nil
	})
	if err != nil {
		return err
	}
	meta, err := listInodes(ctx, img, dirs)
	if err != nil {
		return err
	}
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
			os.Chmod(host, 0o600) // our own copy; its real mode is in the header
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
	f, err := os.CreateTemp("", "simple-uml-debugfs-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	f.WriteString(cmds.String())
	f.Close()
	out, err := run.Output(ctx, run.Cmd{Args: []string{"debugfs", "-f", f.Name(), img}})
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
