package rootfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Xattr is one extended attribute of a file, as getxattr(2) returns it: ACLs in the POSIX xattr
// form (version 2), not ext4's on-disk form.
type Xattr struct {
	Name  string
	Value []byte
}

// ext4 keeps an inode's extended attributes after its fixed fields (when the inode is larger than
// 128 bytes) and in one external block. Both are lists of entries whose names are short prefixes by
// index plus a suffix; values sit elsewhere in the same area. The lists come from a guest's image, so
// every offset is checked against the area it must lie in and the totals are bounded.
const (
	xattrMagic      = 0xea020000
	maxXattrs       = 256     // per file, in its inode and its block together
	maxXattrBytes   = 1 << 16 // names and values of one file
	xattrEntryFixed = 16      // name length, index, value offset, value inode, value size, hash
)

// xattrPrefixes are ext4's name indexes (fs/ext4/xattr.c). Names outside them are refused rather
// than guessed.
var xattrPrefixes = map[byte]string{
	1: "user.",
	2: "system.posix_acl_access",
	3: "system.posix_acl_default",
	4: "trusted.",
	6: "security.",
	7: "system.",
}

// errXattrInode: values kept in inodes of their own (the ea_inode feature) are not read.
var errXattrInode = errors.New("an extended attribute's value is in an inode of its own (ea_inode), which the reader does not take")

// inodeXattrs decodes the attributes stored in an inode's extra space (inode is the whole on-disk
// inode, inodeSize bytes).
func inodeXattrs(inode []byte) ([]Xattr, error) {
	if len(inode) <= 128+4 {
		return nil, nil
	}
	extra := int(binary.LittleEndian.Uint16(inode[0x80:]))
	start := 128 + extra
	if extra == 0 || extra%4 != 0 || start+4 > len(inode) {
		return nil, nil // no room for attributes, as the kernel reads it: none kept here
	}
	if binary.LittleEndian.Uint32(inode[start:]) != xattrMagic {
		return nil, nil
	}
	// In the inode, value offsets count from the first entry.
	area := inode[start+4:]
	return parseXattrEntries(area, 0, area)
}

// blockXattrs decodes an external attribute block.
func blockXattrs(block []byte) ([]Xattr, error) {
	if len(block) < 32 || binary.LittleEndian.Uint32(block) != xattrMagic {
		return nil, errors.New("its extended attribute block has no valid header")
	}
	if n := binary.LittleEndian.Uint32(block[8:]); n != 1 {
		return nil, fmt.Errorf("its extended attribute block claims %d blocks", n)
	}
	// In a block, value offsets count from the block's start.
	return parseXattrEntries(block, 32, block)
}

// parseXattrEntries reads entries from list[off:] until the four zero bytes that end them; values
// are at offsets into values.
func parseXattrEntries(list []byte, off int, values []byte) ([]Xattr, error) {
	var out []Xattr
	total := 0
	for {
		if off+4 > len(list) {
			return nil, errors.New("its extended attribute list has no end")
		}
		if binary.LittleEndian.Uint32(list[off:]) == 0 {
			break
		}
		if off+xattrEntryFixed > len(list) {
			return nil, errors.New("its extended attribute list is cut short")
		}
		nameLen, index := int(list[off]), list[off+1]
		valueOff := int(binary.LittleEndian.Uint16(list[off+2:]))
		valueInode := binary.LittleEndian.Uint32(list[off+4:])
		valueSize := int(binary.LittleEndian.Uint32(list[off+8:]))
		nameEnd := off + xattrEntryFixed + nameLen
		if nameEnd > len(list) {
			return nil, errors.New("an extended attribute's name runs past its list")
		}
		if valueInode != 0 {
			return nil, errXattrInode
		}
		if valueSize < 0 || valueSize > len(values) || valueOff > len(values)-valueSize {
			return nil, fmt.Errorf("an extended attribute's value (%d bytes at %d) lies outside its area", valueSize, valueOff)
		}
		name, err := xattrName(index, list[off+xattrEntryFixed:nameEnd])
		if err != nil {
			return nil, err
		}
		value := slices.Clone(values[valueOff : valueOff+valueSize])
		if strings.HasPrefix(name, "system.posix_acl_") {
			if value, err = aclFromDisk(value); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
		if len(out) == maxXattrs {
			return nil, fmt.Errorf("more than %d extended attributes", maxXattrs)
		}
		if total += len(name) + len(value); total > maxXattrBytes {
			return nil, fmt.Errorf("extended attributes of more than %d bytes", maxXattrBytes)
		}
		out = append(out, Xattr{Name: name, Value: value})
		off = (nameEnd + 3) &^ 3
	}
	return out, nil
}

// xattrName joins an entry's prefix and suffix, refusing what no tool could name on a command line
// or in a tar record: the names are handed to debugfs and written into PAX records.
func xattrName(index byte, suffix []byte) (string, error) {
	prefix, ok := xattrPrefixes[index]
	if !ok {
		return "", fmt.Errorf("an extended attribute has name index %d, which ext4 does not define", index)
	}
	if (index == 2 || index == 3) && len(suffix) > 0 {
		return "", fmt.Errorf("an ACL attribute has a name of its own (%q), which ext4 never writes", suffix)
	}
	// "system." with a suffix that another index names: the kernel never reads it as that, but written
	// again by name it would become one (an ACL the guest never had in force).
	if index == 7 && slices.Contains([]string{"posix_acl_access", "posix_acl_default", "richacl"}, string(suffix)) {
		return "", fmt.Errorf("extended attribute system.%s is stored under the wrong name index, as ext4 never writes it", suffix)
	}
	name := prefix + string(suffix)
	if err := checkXattrName(name); err != nil {
		return "", err
	}
	return name, nil
}

// checkXattrName accepts names of printable ASCII without spaces, quotes, '=', '%' or backslashes, in
// a namespace the image keeps: debugfs splits its commands at spaces and quotes, and GNU tar decodes
// %XX in a record's key.
func checkXattrName(name string) error {
	ok := len(name) <= 255 && strings.ContainsRune(name, '.') && !strings.HasSuffix(name, ".")
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"'\=#%`, c) >= 0 {
			ok = false
		}
	}
	if name == "system.data" {
		ok = false // inline data's marker, refused with the inline data itself
	}
	if !ok {
		return fmt.Errorf("extended attribute name %q is not one the image can carry", name)
	}
	return nil
}

// POSIX ACL forms: ext4 stores version 1 with 4-byte entries for the owner, group, mask and other
// and 8-byte ones for named users and groups; getxattr(2) returns version 2 with 8-byte entries
// throughout, the id of unnamed ones being -1.
const (
	aclDiskVersion  = 1
	aclXattrVersion = 2
	aclUser         = 0x02
	aclGroup        = 0x08
	aclUndefinedID  = 0xffffffff
	maxACLEntries   = 1024
)

// aclTags: the owner, named users, the owning group, named groups, the mask and others.
var aclTags = []uint16{0x01, aclUser, 0x04, aclGroup, 0x10, 0x20}

// checkACLMode refuses an access ACL (xattr form) that says otherwise than the file's mode, and a
// default ACL on what is not a directory: the kernel keeps the two in step and applies neither
// otherwise, but tar, extracting the attribute after the mode, would put the ACL in force.
func checkACLMode(name string, acl []byte, mode uint32) error {
	if name == "system.posix_acl_default" {
		if mode&0o170000 != 0o040000 {
			return errors.New("a default ACL on what is not a directory")
		}
		return nil
	}
	perms := map[uint16]uint16{}
	named := false
	for off := 4; off+8 <= len(acl); off += 8 {
		tag, perm := binary.LittleEndian.Uint16(acl[off:]), binary.LittleEndian.Uint16(acl[off+2:])
		if tag == aclUser || tag == aclGroup {
			named = true
			continue
		}
		if _, twice := perms[tag]; twice {
			return fmt.Errorf("ACL entry %#x is given twice", tag)
		}
		perms[tag] = perm
	}
	group, hasMask := perms[0x10]
	if !hasMask {
		group = perms[0x04]
	}
	_, owner := perms[0x01]
	_, groupObj := perms[0x04]
	_, other := perms[0x20]
	switch {
	case !owner || !groupObj || !other || (named && !hasMask):
		return errors.New("an ACL without its owner, group, other or (with named entries) mask entry")
	case uint32(perms[0x01]) != mode>>6&7 || uint32(group) != mode>>3&7 || uint32(perms[0x20]) != mode&7:
		return fmt.Errorf("an access ACL that disagrees with the mode %04o", mode&0o7777)
	}
	return nil
}

// aclFromDisk converts an ext4 on-disk ACL into the xattr form.
func aclFromDisk(disk []byte) ([]byte, error) {
	if len(disk) < 4 || binary.LittleEndian.Uint32(disk) != aclDiskVersion {
		return nil, errors.New("not an ext4 ACL (version 1)")
	}
	if len(disk) == 4 {
		return nil, errors.New("an ACL without entries")
	}
	out := binary.LittleEndian.AppendUint32(nil, aclXattrVersion)
	for off, n := 4, 0; off < len(disk); n++ {
		if off+4 > len(disk) || n == maxACLEntries {
			return nil, errors.New("ACL entries cut short or too many")
		}
		tag, perm := binary.LittleEndian.Uint16(disk[off:]), binary.LittleEndian.Uint16(disk[off+2:])
		if !slices.Contains(aclTags, tag) || perm > 7 {
			return nil, fmt.Errorf("ACL entry with tag %#x and permissions %#o, which POSIX does not define", tag, perm)
		}
		id := uint32(aclUndefinedID)
		off += 4
		if tag == aclUser || tag == aclGroup {
			if off+4 > len(disk) {
				return nil, errors.New("ACL entry cut short")
			}
			id = binary.LittleEndian.Uint32(disk[off:])
			off += 4
		}
		out = binary.LittleEndian.AppendUint16(out, tag)
		out = binary.LittleEndian.AppendUint16(out, perm)
		out = binary.LittleEndian.AppendUint32(out, id)
	}
	return out, nil
}
