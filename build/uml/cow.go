package uml

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// UML's copy-on-write format, version 3 (arch/um/drivers/cow_user.c): a big-endian header naming the
// backing file with its size and mtime, a bitmap of the sectors the guest wrote, then those sectors
// at their offsets in the backing file. UML's ubd driver makes it with 512-byte sectors and the
// bitmap and data aligned to the page.
const (
	cowMagic      = 0x4f4f4f4d // "MOOO"
	cowVersion    = 3
	cowPathLen    = 4096
	cowHeaderLen  = 6*4 + 8 + cowPathLen // magic, version, mtime, size (8 bytes), sectorsize, alignment, format; path
	cowSectorSize = 512
	cowAlignment  = 4096
)

// createCOW writes a new copy-on-write file over image at cow, as UML itself writes one when it is
// missing, so that the sandbox grants the kernel process that one file and not the folder it is
// made in. It never replaces a file: a COW file that appeared meanwhile is an error.
func createCOW(cow, image string) error {
	backing, err := filepath.Abs(image)
	if err != nil {
		return err
	}
	if len(backing) >= cowPathLen {
		return fmt.Errorf("image %s: UML's COW header holds a path of at most %d bytes", backing, cowPathLen-1)
	}
	info, err := os.Stat(backing)
	if err != nil {
		return fmt.Errorf("COW file %s over %w", cow, err)
	}
	header := make([]byte, cowHeaderLen)
	be := binary.BigEndian
	be.PutUint32(header[0:], cowMagic)
	be.PutUint32(header[4:], cowVersion)
	be.PutUint32(header[8:], uint32(info.ModTime().Unix())) // UML compares seconds, 32 bits of them
	be.PutUint64(header[12:], uint64(info.Size()))
	be.PutUint32(header[20:], cowSectorSize)
	be.PutUint32(header[24:], cowAlignment)
	be.PutUint32(header[28:], 0) // the bitmap format, UML's only one
	copy(header[32:], backing)

	sectors := (info.Size() + cowSectorSize - 1) / cowSectorSize
	bitmapOffset := roundUp(cowHeaderLen, cowAlignment)
	dataOffset := roundUp(bitmapOffset+(sectors+7)/8, cowAlignment)

	tmp, err := os.CreateTemp(filepath.Dir(cow), "."+filepath.Base(cow)+".new-")
	if err != nil {
		return fmt.Errorf("COW file %s: %w", cow, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(header)
	if err == nil {
		// A sparse file as long as UML's: the bitmap reads as zeros, no sector written yet.
		err = tmp.Truncate(dataOffset + info.Size())
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// A link, not a rename: it fails rather than replace a file of that name.
		err = os.Link(tmp.Name(), cow)
	}
	if err != nil {
		return fmt.Errorf("COW file %s: %w", cow, err)
	}
	return nil
}

func roundUp(n, align int64) int64 { return (n + align - 1) / align * align }

// cowInUse returns an error naming the process that has cow open for writing: a UML kernel locks
// its copy-on-write file (a POSIX record lock) while it runs, and a second kernel on the same file
// fails to boot with a panic trace rather than a reason.
func cowInUse(cow string) error {
	f, err := os.OpenFile(cow, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil // missing: prepare makes it; anything else, the kernel says
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil // the kernel says what is wrong with it
	}
	lock := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lock); err != nil || lock.Type == unix.F_UNLCK {
		return nil
	}
	if name := instanceOf(int(lock.Pid)); name != "" {
		return fmt.Errorf("copy-on-write file %s is in use by instance %s, pid %d: stop it (`go tool mage stop %s`), or give this boot another file (boot.cow, SUML_BOOT_COW)", cow, name, lock.Pid, name)
	}
	return fmt.Errorf("copy-on-write file %s is in use by pid %d (another boot of it): stop that boot, or give this one another file (boot.cow, SUML_BOOT_COW)", cow, lock.Pid)
}

// InstanceUmid starts the UML machine id of an instance's kernel (build/instance), the instance's
// name following: a boot refused its COW file names the instance that holds it.
const InstanceUmid = "instance-"

// instanceOf is the name of the instance whose kernel pid is, or "".
func instanceOf(pid int) string {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if name, ok := strings.CutPrefix(arg, "umid="+InstanceUmid); ok {
			return name
		}
	}
	return ""
}
