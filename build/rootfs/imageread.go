package rootfs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/simple-uml/simple-uml/build/files"
)

// A guest-written image is hostile: the guest is root on its own block device and can put any bytes
// in it, names with newlines or slashes, two entries with one name, a directory linked into itself,
// a symlink to a host file. So nothing read from it is resolved as a host path or handed to debugfs
// as a file name: debugfs only dumps blocks by inode number into files whose names this package
// chooses, inodes and their extended attributes are read from the image's inode tables and attribute
// blocks, and all of it is decoded here. Attribute names do reach debugfs's command line (ea_set),
// after checkXattrName: printable, no spaces or quotes.

// imageEntry is one directory entry of an image.
type imageEntry struct {
	Path      string // guest path, "/etc/passwd"
	Ino       uint64
	Mode      uint32 // type and permission bits, as st_mode
	UID, GID  int
	Size      int64
	Target    string  // a symlink's target
	Xattrs    []Xattr // sorted by name
	rawBlock  []byte  // the inode's i_block: a fast symlink's target
	flags     uint32
	allocated int64 // bytes of blocks the inode holds (i_blocks), its metadata blocks included
}

// ext4 inode flags the reader refuses: their data is not plain blocks.
const (
	inodeEncrypted  = 0x800
	inodeInlineData = 0x10000000
)

// inodeHugeFile: i_blocks counts file system blocks, not sectors.
const inodeHugeFile = 0x40000

// Limits against an image that would make the reader run away.
const (
	maxImageEntries    = 1 << 20
	maxDirBytes        = 64 << 20
	maxImageXattrBytes = 64 << 20 // a system with an SELinux label on each of 100,000 files holds 3 MiB
	// xattrCost is what one attribute costs beside its bytes (a debugfs command, a tar record), counted
	// against maxImageXattrBytes: at most 256 Ki attributes an image, however small.
	xattrCost = 256
)

// guestImage is a read image: its entries sorted by path, and the contents of its regular files and
// long symlinks dumped by inode number into a private folder.
type guestImage struct {
	dir        string
	Entries    []imageEntry
	Root       imageEntry // the root directory itself: its owner, mode and attributes
	xattrBytes int        // of every inode read so far
}

func (g *guestImage) blob(ino uint64) string {
	return filepath.Join(g.dir, "i"+strconv.FormatUint(ino, 10))
}

// Close removes the private folder.
func (g *guestImage) Close() error { return files.RemoveAllWritable(g.dir) }

// readGuestImage reads the file system in img into a new private folder in parent (prefix names it,
// so that a killed run's leftovers are found), or returns an error naming what in the image is wrong.
func readGuestImage(ctx context.Context, img, parent, prefix string) (*guestImage, error) {
	fi, err := os.Stat(img)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, err
	}
	g := &guestImage{dir: dir}
	err = g.walk(ctx, img)
	if err == nil {
		err = g.dumpContents(ctx, img, fi.Size())
	}
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("image %s: %w", img, err)
	}
	return g, nil
}

// dirRef is a directory of the image to read: its inode and its path.
type dirRef struct {
	ino  uint64
	path string
}

// children dumps the directories of one level as raw blocks with debugfs and decodes their entries.
func (g *guestImage) children(ctx context.Context, img string, level []dirRef) ([]imageEntry, error) {
	var cmds strings.Builder
	for _, d := range level {
		fmt.Fprintf(&cmds, "dump <%d> %s\n", d.ino, g.blob(d.ino))
	}
	if err := debugfsScript(ctx, img, cmds.String(), false, nil); err != nil {
		return nil, err
	}
	var children []imageEntry
	for _, d := range level {
		data, err := os.ReadFile(g.blob(d.ino))
		if err != nil {
			return nil, fmt.Errorf("directory %s: %w", d.path, err)
		}
		os.Remove(g.blob(d.ino))
		names, err := parseDirBlocks(data)
		if err != nil {
			return nil, fmt.Errorf("directory %s: %w", d.path, err)
		}
		for _, n := range names {
			children = append(children, imageEntry{Path: strings.TrimSuffix(d.path, "/") + "/" + n.name, Ino: n.ino})
		}
	}
	return children, nil
}

// walk lists the tree level by level: the directories of one level are dumped as raw blocks by
// debugfs and decoded, then their children's inodes are read from the image's inode tables; the
// directories among them make the next level.
func (g *guestImage) walk(ctx context.Context, img string) error {
	inodes, err := openInodeTable(img)
	if err != nil {
		return err
	}
	defer inodes.Close()
	g.Root = imageEntry{Path: "/", Ino: 2}
	if err := g.decodeInode(inodes, &g.Root); err != nil {
		return err
	}
	if g.Root.Mode&0o170000 != 0o040000 {
		return fmt.Errorf("the root inode is not a directory (mode %o)", g.Root.Mode)
	}
	level := []dirRef{{2, "/"}}
	seenDir := map[uint64]bool{2: true}
	decoded := map[uint64]imageEntry{} // by inode: a hard link to a file is decoded once
	var dirBytes int64
	for len(level) > 0 {
		children, err := g.children(ctx, img, level)
		if err != nil {
			return err
		}
		if len(g.Entries)+len(children) > maxImageEntries {
			return fmt.Errorf("more than %d entries", maxImageEntries)
		}
		level = level[:0]
		for _, c := range children {
			// A regular file's links stay links, one inode with its attributes, counted once; any
			// other inode with many names (a symlink) is made again for each, and counted each time.
			if d, ok := decoded[c.Ino]; ok {
				d.Path = c.Path
				c = d
			} else if err := g.decodeInode(inodes, &c); err != nil {
				return err
			} else if c.Mode&0o170000 == 0o100000 {
				decoded[c.Ino] = c
			}
			if c.Mode&0o170000 == 0o040000 {
				if seenDir[c.Ino] {
					return fmt.Errorf("%s is a second link to directory inode %d: the directory tree has a loop", c.Path, c.Ino)
				}
				if c.Size > maxDirBytes {
					return fmt.Errorf("directory %s is %d bytes, larger than any real one", c.Path, c.Size)
				}
				// debugfs dumps a directory's holes as zeros: a size its blocks do not hold, or
				// directories that together claim more than the image, would fill the host's disk.
				if c.Size > c.allocated {
					return fmt.Errorf("directory %s claims %d bytes but has %d allocated", c.Path, c.Size, c.allocated)
				}
				if dirBytes += c.Size; dirBytes > inodes.size {
					return fmt.Errorf("its directories hold more bytes than the image has (%d at %s)", dirBytes, c.Path)
				}
				seenDir[c.Ino] = true
				level = append(level, dirRef{c.Ino, c.Path})
			}
			g.Entries = append(g.Entries, c)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	slices.SortFunc(g.Entries, func(a, b imageEntry) int { return strings.Compare(a.Path, b.Path) })
	return nil
}

// decodeInode fills a new entry from its inode, its extended attributes counted against the
// image's bound.
func (g *guestImage) decodeInode(inodes *inodeTable, e *imageEntry) error {
	raw, err := inodes.raw(e.Ino)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	e.decode(raw, inodes.blockSize)
	if e.flags&(inodeEncrypted|inodeInlineData) != 0 {
		return fmt.Errorf("%s is encrypted or has inline data (inode flags %#x), which the reader does not take", e.Path, e.flags)
	}
	if e.Xattrs, err = g.xattrs(inodes, raw); err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	for _, x := range e.Xattrs {
		if strings.HasPrefix(x.Name, "system.posix_acl_") {
			if err := checkACLMode(x.Name, x.Value, e.Mode); err != nil {
				return fmt.Errorf("%s: %s: %w", e.Path, x.Name, err)
			}
		}
	}
	return nil
}

// xattrs reads one inode's extended attributes and adds their bytes to the image's total: distinct
// inodes may share one attribute block, so a bound per file alone would let a small image hold
// gigabytes of attributes.
func (g *guestImage) xattrs(inodes *inodeTable, raw []byte) ([]Xattr, error) {
	xattrs, err := inodes.xattrs(raw)
	for _, x := range xattrs {
		g.xattrBytes += xattrCost + len(x.Name) + len(x.Value)
	}
	if err == nil && g.xattrBytes > maxImageXattrBytes {
		err = fmt.Errorf("the image's extended attributes add up to more than %d MiB", maxImageXattrBytes>>20)
	}
	return xattrs, err
}

// dumpContents writes each regular file and long symlink once per inode into the private folder, and
// checks every dump has the size its inode gives.
func (g *guestImage) dumpContents(ctx context.Context, img string, imageSize int64) error {
	var cmds strings.Builder
	dumped := map[uint64]bool{}
	var total int64
	for i := range g.Entries {
		e := &g.Entries[i]
		switch e.Mode & 0o170000 {
		case 0o120000:
			if e.Size <= 0 || e.Size >= 60 {
				break // a slow symlink: its target is in a data block
			}
			target := e.rawBlock[:e.Size]
			if err := checkTarget(e.Path, target); err != nil {
				return err
			}
			e.Target = string(target)
			continue
		case 0o100000:
		default:
			continue
		}
		if dumped[e.Ino] {
			continue
		}
		dumped[e.Ino] = true
		if total += e.Size; total > imageSize {
			return fmt.Errorf("its files hold more bytes than the image has (%d at %s)", total, e.Path)
		}
		fmt.Fprintf(&cmds, "dump <%d> %s\n", e.Ino, g.blob(e.Ino))
	}
	if cmds.Len() > 0 {
		if err := debugfsScript(ctx, img, cmds.String(), false, nil); err != nil {
			return err
		}
	}
	for i := range g.Entries {
		e := &g.Entries[i]
		if !dumped[e.Ino] {
			continue
		}
		fi, err := os.Lstat(g.blob(e.Ino))
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != e.Size {
			return fmt.Errorf("%s (inode %d, %d bytes) could not be read back: %v", e.Path, e.Ino, e.Size, err)
		}
		if e.Mode&0o170000 == 0o120000 {
			target, err := os.ReadFile(g.blob(e.Ino))
			if err != nil {
				return err
			}
			if err := checkTarget(e.Path, target); err != nil {
				return err
			}
			e.Target = string(target)
		}
	}
	return nil
}

func checkTarget(path string, target []byte) error {
	if len(target) == 0 || slices.Contains(target, 0) || len(target) > 4095 {
		return fmt.Errorf("symlink %s has a target no file system would hold (%d bytes)", path, len(target))
	}
	return nil
}

// decode fills an entry's fields from its raw ext4 inode.
func (e *imageEntry) decode(b []byte, blockSize int64) {
	le16 := func(o int) uint32 { return uint32(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) uint64 { return uint64(binary.LittleEndian.Uint32(b[o:])) }
	e.Mode = le16(0x00)
	e.UID = int(le16(0x02) | le16(0x78)<<16)
	e.GID = int(le16(0x18) | le16(0x7a)<<16)
	e.Size = int64(le32(0x04) | le32(0x6c)<<32)
	if e.Size < 0 {
		e.Size = 1<<63 - 1
	}
	e.flags = uint32(le32(0x20))
	e.rawBlock = slices.Clone(b[0x28 : 0x28+60])
	// i_blocks counts 512-byte sectors, or file system blocks with the huge_file inode flag.
	e.allocated = int64(le32(0x1c)|uint64(le16(0x74))<<32) * 512
	if e.flags&inodeHugeFile != 0 {
		e.allocated *= blockSize / 512
	}
}

type dirent struct {
	ino  uint64
	name string
}

// parseDirBlocks decodes an ext4 directory's blocks (as debugfs dumps them) into its entries, "." and
// ".." (the first two entries) left out. Hash-tree index blocks and checksum tails are entries of inode 0 and are skipped, as
// an ext2 reader does. It refuses names that are not one path component and names given twice.
func parseDirBlocks(data []byte) ([]dirent, error) {
	var out []dirent
	seen := map[string]bool{}
	live := 0 // entries with an inode so far: "." and ".." are the first two, and only there
	for off := 0; off < len(data); {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("corrupt directory: %d stray bytes at offset %d", len(data)-off, off)
		}
		ino := uint64(binary.LittleEndian.Uint32(data[off:]))
		recLen := int(binary.LittleEndian.Uint16(data[off+4:]))
		nameLen := int(data[off+6])
		if recLen == 0 || recLen == 0xffff {
			recLen = 1 << 16 // how ext4 writes a record spanning a 64 KiB block
		}
		if recLen < 8 || recLen%4 != 0 || recLen > len(data)-off || 8+nameLen > recLen {
			return nil, fmt.Errorf("corrupt directory: entry at offset %d has record length %d for a name of %d bytes", off, recLen, nameLen)
		}
		if ino != 0 {
			name := string(data[off+8 : off+8+nameLen])
			live++
			switch {
			case name == "." && live == 1, name == ".." && live == 2:
			case name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00"):
				return nil, fmt.Errorf("entry %q at offset %d is not a file name", name, off)
			case seen[name]:
				return nil, fmt.Errorf("two entries are named %q", name)
			default:
				seen[name] = true
				out = append(out, dirent{ino, name})
			}
		}
		off += recLen
	}
	return out, nil
}

// inodeTable reads raw inodes straight from an image file: the superblock and group descriptors
// locate each group's inode table. Only numbers from the image are used, to compute offsets that
// are checked against the file's size.
type inodeTable struct {
	f              *os.File
	size           int64
	blockSize      int64
	inodesCount    uint64
	inodesPerGroup uint64
	inodeSize      int64
	descSize       int64
	descStart      int64
	groups         uint64
	is64Bit        bool
}

// ext4 superblock fields and features the reader depends on.
const (
	superblockOffset = 1024
	ext4Magic        = 0xef53
	incompatMetaBG   = 0x10
	incompat64Bit    = 0x80
)

func openInodeTable(img string) (*inodeTable, error) {
	f, err := os.Open(img)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, superblockOffset); err != nil {
		f.Close()
		return nil, fmt.Errorf("superblock: %w", err)
	}
	t, err := parseSuperblock(sb, fi.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	t.f = f
	return t, nil
}

// parseSuperblock reads what locating inodes needs, refusing values no ext4 file system of this size
// could have.
func parseSuperblock(sb []byte, size int64) (*inodeTable, error) {
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(sb[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(sb[o:])) }
	if len(sb) < 1024 || le16(0x38) != ext4Magic {
		return nil, errors.New("not an ext2/3/4 file system (no superblock magic)")
	}
	logBlock := le32(0x18)
	if logBlock > 6 {
		return nil, fmt.Errorf("block size 2^%d KiB is not one ext4 uses", logBlock)
	}
	t := &inodeTable{size: size, blockSize: 1024 << logBlock, inodesCount: uint64(le32(0x00)), inodesPerGroup: uint64(le32(0x28)), inodeSize: 128, descSize: 32}
	if le32(0x4c) >= 1 {
		t.inodeSize = le16(0x58)
	}
	incompat := le32(0x60)
	if incompat&incompatMetaBG != 0 {
		return nil, errors.New("the meta_bg feature is not supported (mke2fs does not set it for images of this size)")
	}
	if incompat&incompat64Bit != 0 {
		t.descSize, t.is64Bit = le16(0xfe), true
	}
	switch {
	case t.inodeSize < 128 || t.inodeSize > t.blockSize || t.inodeSize&(t.inodeSize-1) != 0:
		return nil, fmt.Errorf("inode size %d", t.inodeSize)
	case t.descSize < 32 || t.descSize > 1024 || t.descSize&(t.descSize-1) != 0:
		return nil, fmt.Errorf("group descriptor size %d", t.descSize)
	case t.inodesPerGroup == 0 || t.inodesCount == 0:
		return nil, errors.New("no inodes")
	}
	t.groups = (t.inodesCount + t.inodesPerGroup - 1) / t.inodesPerGroup
	t.descStart = (le32(0x14) + 1) * t.blockSize
	if t.groups > uint64(size/t.descSize) || t.descStart+int64(t.groups)*t.descSize > size {
		return nil, fmt.Errorf("%d block groups do not fit in the image", t.groups)
	}
	return t, nil
}

// raw returns inode ino whole: the fixed fields the reader decodes and, past 128 bytes, the extra
// fields and the attributes kept in the inode.
func (t *inodeTable) raw(ino uint64) ([]byte, error) {
	if ino == 0 || ino > t.inodesCount {
		return nil, fmt.Errorf("inode %d does not exist (the file system has %d)", ino, t.inodesCount)
	}
	group, index := (ino-1)/t.inodesPerGroup, (ino-1)%t.inodesPerGroup
	desc := make([]byte, t.descSize)
	if _, err := t.f.ReadAt(desc, t.descStart+int64(group)*t.descSize); err != nil {
		return nil, fmt.Errorf("group descriptor %d: %w", group, err)
	}
	table := int64(binary.LittleEndian.Uint32(desc[8:]))
	if t.descSize >= 64 {
		table |= int64(binary.LittleEndian.Uint32(desc[0x28:])) << 32
	}
	off := table*t.blockSize + int64(index)*t.inodeSize
	if table <= 0 || table > t.size/t.blockSize || off < 0 || off+t.inodeSize > t.size {
		return nil, fmt.Errorf("inode %d lies outside the image", ino)
	}
	b := make([]byte, t.inodeSize)
	if _, err := t.f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("inode %d: %w", ino, err)
	}
	return b, nil
}

// xattrs returns an inode's extended attributes, from the inode and from its attribute block
// (i_file_acl, whose high half counts only with the 64bit feature), sorted by name; a name in both
// places is refused, as ext4 never writes one.
func (t *inodeTable) xattrs(inode []byte) ([]Xattr, error) {
	all, err := inodeXattrs(inode)
	if err != nil {
		return nil, err
	}
	block := uint64(binary.LittleEndian.Uint32(inode[0x68:]))
	if t.is64Bit {
		block |= uint64(binary.LittleEndian.Uint16(inode[0x76:])) << 32
	}
	if block != 0 {
		if block >= uint64(t.size/t.blockSize) {
			return nil, fmt.Errorf("its extended attribute block %d lies outside the image", block)
		}
		b := make([]byte, t.blockSize)
		if _, err := t.f.ReadAt(b, int64(block)*t.blockSize); err != nil {
			return nil, fmt.Errorf("extended attribute block %d: %w", block, err)
		}
		more, err := blockXattrs(b)
		if err != nil {
			return nil, err
		}
		all = append(all, more...)
	}
	slices.SortFunc(all, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(all); i++ {
		if all[i].Name == all[i-1].Name {
			return nil, fmt.Errorf("extended attribute %s is given twice", all[i].Name)
		}
	}
	size := 0
	for _, x := range all {
		size += len(x.Name) + len(x.Value)
	}
	if len(all) > maxXattrs || size > maxXattrBytes {
		return nil, fmt.Errorf("more than %d extended attributes or %d bytes of them", maxXattrs, maxXattrBytes)
	}
	return all, nil
}

func (t *inodeTable) Close() error { return t.f.Close() }
