package rootfs

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// xattrEntry encodes one ext4 attribute entry (value at valueOff) for the hostile lists below.
func xattrEntry(index byte, name string, valueOff, valueSize int, valueInode uint32) []byte {
	e := []byte{byte(len(name)), index}
	e = binary.LittleEndian.AppendUint16(e, uint16(valueOff))
	e = binary.LittleEndian.AppendUint32(e, valueInode)
	e = binary.LittleEndian.AppendUint32(e, uint32(valueSize))
	e = binary.LittleEndian.AppendUint32(e, 0)
	e = append(e, name...)
	for len(e)%4 != 0 {
		e = append(e, 0)
	}
	return e
}

// xattrBlock lays out a block: header, entries, end marker, then values from offset 512.
func xattrBlock(entries ...[]byte) []byte {
	b := make([]byte, 1024)
	binary.LittleEndian.PutUint32(b, xattrMagic)
	binary.LittleEndian.PutUint32(b[8:], 1)
	copy(b[32:], bytes.Join(entries, nil))
	copy(b[512:], "value")
	return b
}

// aclBlock is a block holding one access ACL whose on-disk value is acl.
func aclBlock(acl []byte) []byte {
	b := xattrBlock(xattrEntry(2, "", 512, len(acl), 0))
	copy(b[512:], acl)
	return b
}

// listWithoutEnd fills a block's entry area with entries and no end marker.
func listWithoutEnd() []byte {
	b := xattrBlock()
	e := xattrEntry(1, "abcd", 0, 0, 0)
	off := 32
	for ; off+len(e) <= len(b); off += len(e) {
		copy(b[off:], e)
	}
	copy(b[off:], bytes.Repeat([]byte{0xff}, len(b)-off)) // the start of an entry that does not fit
	return b
}

func TestXattrBlocks(t *testing.T) {
	for _, c := range []struct {
		name  string
		block []byte
		want  string // a Name=Value list, or the error's words
	}{
		{"one user attribute", xattrBlock(xattrEntry(1, "a", 512, 5, 0)), "user.a=value"},
		{"a capability", xattrBlock(xattrEntry(6, "capability", 512, 3, 0)), "security.capability=val"},
		{"value past the block", xattrBlock(xattrEntry(1, "a", 1020, 5, 0)), "lies outside its area"},
		{"value size wraps", xattrBlock(xattrEntry(1, "a", 512, 1<<31+5, 0)), "lies outside its area"},
		{"value in an inode", xattrBlock(xattrEntry(1, "a", 0, 5, 12)), "ea_inode"},
		{"unknown index", xattrBlock(xattrEntry(9, "a", 512, 5, 0)), "name index 9"},
		{"name with a space", xattrBlock(xattrEntry(1, "a b", 512, 5, 0)), "not one the image can carry"},
		{"name with a newline", xattrBlock(xattrEntry(1, "a\nb", 512, 5, 0)), "not one the image can carry"},
		{"empty user name", xattrBlock(xattrEntry(1, "", 512, 5, 0)), "not one the image can carry"},
		{"inline data marker", xattrBlock(xattrEntry(7, "data", 512, 0, 0)), "not one the image can carry"},
		{"ACL in the wrong form", xattrBlock(xattrEntry(2, "", 512, 5, 0)), "not an ext4 ACL"},
		{"name with a percent sign", xattrBlock(xattrEntry(1, "a%3Db", 512, 5, 0)), "not one the image can carry"},
		{"ACL with a name of its own", xattrBlock(xattrEntry(2, "x", 512, 4, 0)), "name of its own"},
		{"ACL under the system index", xattrBlock(xattrEntry(7, "posix_acl_access", 512, 4, 0)), "wrong name index"},
		{"ACL with an unknown tag", aclBlock([]byte{1, 0, 0, 0, 0x40, 0, 7, 0}), "tag 0x40"},
		{"ACL without entries", aclBlock([]byte{1, 0, 0, 0}), "without entries"},
		{"ACL in ext4's form", aclBlock([]byte{1, 0, 0, 0, 1, 0, 6, 0, 2, 0, 6, 0, 0xe8, 3, 0, 0, 0x20, 0, 4, 0}),
			"system.posix_acl_access=" + string([]byte{2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 6, 0, 0xe8, 3, 0, 0, 0x20, 0, 4, 0, 0xff, 0xff, 0xff, 0xff})},
		{"no header", make([]byte, 1024), "no valid header"},
		{"list without end", listWithoutEnd(), "cut short"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := blockXattrs(c.block)
			var s string
			if err != nil {
				s = err.Error()
			}
			for _, x := range got {
				s += x.Name + "=" + string(x.Value)
			}
			if !strings.Contains(s, c.want) {
				t.Errorf("got %q, want %q", s, c.want)
			}
		})
	}
}

func TestXattrBounds(t *testing.T) {
	var entries [][]byte
	for i := range maxXattrs + 1 {
		entries = append(entries, xattrEntry(1, string(rune('a'+i%26))+strings.Repeat("x", i/26), 0, 0, 0))
	}
	b := xattrBlock()
	b = append(b[:32], bytes.Join(entries, nil)...)
	b = append(b, 0, 0, 0, 0)
	if _, err := blockXattrs(b); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("%d attributes: %v", maxXattrs+1, err)
	}
}

func FuzzXattrs(f *testing.F) {
	f.Add(xattrBlock(xattrEntry(1, "a", 512, 5, 0), xattrEntry(2, "", 512, 4, 0)))
	inode := make([]byte, 256)
	binary.LittleEndian.PutUint16(inode[0x80:], 32)
	binary.LittleEndian.PutUint32(inode[160:], xattrMagic)
	copy(inode[164:], xattrEntry(6, "capability", 40, 4, 0))
	f.Add(inode)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) ([]Xattr, error){blockXattrs, inodeXattrs} {
			xs, err := parse(data)
			if err != nil {
				continue
			}
			total := 0
			for _, x := range xs {
				if checkXattrName(x.Name) != nil {
					t.Fatalf("name %q passed", x.Name)
				}
				total += len(x.Name) + len(x.Value)
			}
			if len(xs) > maxXattrs || total > maxXattrBytes {
				t.Fatalf("%d attributes of %d bytes passed", len(xs), total)
			}
		}
	})
}
