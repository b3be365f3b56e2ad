package rootfs

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadImageHashTreeDirectory reads a directory that e2fsck has indexed as a hash tree, as the
// guest's kernel does to a directory that outgrows a block: every name comes back, none twice.
func TestReadImageHashTreeDirectory(t *testing.T) {
	needImageTools(t)
	ctx := context.Background()
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(tree, "many"), 0o755)
	const n = 3000
	for i := range n {
		os.WriteFile(filepath.Join(tree, "many", fmt.Sprintf("file-with-a-longish-name-%05d", i)), nil, 0o644)
	}
	img := filepath.Join(t.TempDir(), "img")
	opts := ImageOptions{Size: 16 << 20, UUID: "01234567-89ab-4def-8123-456789abcdef", Label: "t", Epoch: time.Unix(1732000000, 0), Log: io.Discard}
	if err := MakeImage(ctx, tree, img, opts); err != nil {
		t.Fatal(err)
	}
	// -D rebuilds directories with indexes; exit status 1 means "changed", which is what is asked.
	out, err := exec.Command("e2fsck", "-fyD", img).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() > 1) {
		t.Fatalf("e2fsck: %v\n%s", err, out)
	}
	if ls, _ := exec.Command("debugfs", "-R", "htree_dump /many", img).CombinedOutput(); !strings.Contains(string(ls), "Root node dump") {
		t.Fatalf("/many is not a hash tree, the test proves nothing:\n%.400s", ls)
	}
	g, err := readGuestImage(ctx, img, t.TempDir(), ".read-")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	seen := map[string]bool{}
	for _, e := range g.Entries {
		if strings.HasPrefix(e.Path, "/many/") {
			seen[e.Path] = true
		}
	}
	if len(seen) != n {
		t.Errorf("read %d names of /many, want %d", len(seen), n)
	}
}

// FuzzParseDirBlocks feeds directory blocks a guest could write: the parser must return names that
// are single path components, each once, or an error; never panic or loop.
func FuzzParseDirBlocks(f *testing.F) {
	block := make([]byte, 1024)
	put := func(off int, ino uint32, recLen uint16, name string) {
		block[off], block[off+1], block[off+2], block[off+3] = byte(ino), byte(ino>>8), byte(ino>>16), byte(ino>>24)
		block[off+4], block[off+5] = byte(recLen), byte(recLen>>8)
		block[off+6], block[off+7] = byte(len(name)), 1
		copy(block[off+8:], name)
	}
	put(0, 2, 12, ".")
	put(12, 2, 12, "..")
	put(24, 12, 1000, "etc")
	f.Add(block)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseDirBlocks(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if e.name == "" || e.name == "." || e.name == ".." || strings.ContainsAny(e.name, "/\x00") || seen[e.name] {
				t.Fatalf("accepted name %q", e.name)
			}
			seen[e.name] = true
		}
	})
}

// FuzzInodeTable feeds images a guest could write (the superblock's and descriptors' numbers are
// the guest's): locating an inode never panics or reads outside the file; it returns an inode or an
// error.
func FuzzInodeTable(f *testing.F) {
	img := filepath.Join(f.TempDir(), "img")
	if err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", img, "1M").Run(); err == nil {
		data, _ := os.ReadFile(img)
		f.Add(data[:8192])
	}
	f.Add(make([]byte, 2048))
	f.Fuzz(func(t *testing.T, data []byte) {
		img := filepath.Join(t.TempDir(), "img")
		os.WriteFile(img, data, 0o644)
		table, err := openInodeTable(img)
		if err != nil {
			return
		}
		defer table.Close()
		for _, ino := range []uint64{0, 1, 2, 11, 12, 1 << 20, 1<<32 - 1} {
			raw, err := table.raw(ino)
			if err != nil {
				continue
			}
			if int64(len(raw)) != table.inodeSize {
				t.Fatalf("inode %d: %d bytes, want the inode size %d", ino, len(raw), table.inodeSize)
			}
			table.xattrs(raw)
		}
	})
}
