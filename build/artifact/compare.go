package artifact

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/simple-uml/simple-uml/build/host"
	"github.com/simple-uml/simple-uml/build/run"
)

// Difference is the first place two release folders differ, and a hint of why.
type Difference struct {
	File   string // asset name
	Offset int64  // first differing byte of the file as stored; -1 when it is in one folder only
	Member string // in an archive: the first member that differs
	Detail string // what differs, in words
}

func (d *Difference) String() string {
	s := d.File
	if d.Offset >= 0 {
		s += fmt.Sprintf(" (first differing byte at offset %d)", d.Offset)
	}
	if d.Member != "" {
		s += ": member " + d.Member
	}
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	return s
}

// CompareDirs compares two folders of release assets byte for byte and returns the first difference,
// nil when every file is identical. Files whose content follows from the others (manifest.json, then
// SHA256SUMS) are compared last, so the difference reported is the cause. Inside compressed tar
// archives and images it says which member or field differs.
func CompareDirs(a, b string) (*Difference, error) {
	names, err := union(a, b)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		pa, pb := filepath.Join(a, name), filepath.Join(b, name)
		_, ea := os.Stat(pa)
		_, eb := os.Stat(pb)
		if ea != nil || eb != nil {
			where := b
			if ea != nil {
				where = a
			}
			return &Difference{File: name, Offset: -1, Detail: "missing from " + where}, nil
		}
		off, err := firstDiff(pa, pb)
		if err != nil {
			return nil, err
		}
		if off < 0 {
			continue
		}
		d := &Difference{File: name, Offset: off}
		explain(d, pa, pb)
		return d, nil
	}
	return nil, nil
}

// Diffoscope returns the start of diffoscope's text report on two files that differ, "" when
// diffoscope is not installed.
func Diffoscope(ctx context.Context, a, b string) string {
	if _, err := host.LookPath("diffoscope"); err != nil {
		return ""
	}
	// diffoscope exits 1 when the files differ, which they do: its report is the result.
	out, err := run.Output(ctx, run.Cmd{Args: []string{"diffoscope", "--text", "-", "--max-text-report-size", "20000", a, b}})
	if out == "" && err != nil {
		return "diffoscope failed: " + err.Error()
	}
	lines := strings.SplitAfter(out, "\n")
	if len(lines) > 80 {
		lines = append(lines[:80], "...\n")
	}
	return strings.Join(lines, "")
}

// union lists the regular files of both folders, derived files last.
func union(a, b string) ([]string, error) {
	seen := map[string]bool{}
	for _, dir := range []string{a, b} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				seen[e.Name()] = true
			}
		}
	}
	rank := func(n string) int {
		switch n {
		case "manifest.json":
			return 1
		case SumsName:
			return 2
		}
		return 0
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if ri, rj := rank(names[i]), rank(names[j]); ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	return names, nil
}

// firstDiff returns the offset of the first differing byte of two files, -1 when they are equal.
func firstDiff(a, b string) (int64, error) {
	fa, err := os.Open(a)
	if err != nil {
		return 0, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return 0, err
	}
	defer fb.Close()
	return readersDiff(fa, fb)
}

func readersDiff(a, b io.Reader) (int64, error) {
	ra, rb := bufio.NewReaderSize(a, 1<<20), bufio.NewReaderSize(b, 1<<20)
	var off int64
	bufA, bufB := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, errA := io.ReadFull(ra, bufA)
		nb, errB := io.ReadFull(rb, bufB)
		n := min(na, nb)
		if i := mismatch(bufA[:n], bufB[:n]); i >= 0 {
			return off + int64(i), nil
		}
		if na != nb {
			return off + int64(n), nil
		}
		off += int64(n)
		endA := errors.Is(errA, io.EOF) || errors.Is(errA, io.ErrUnexpectedEOF)
		endB := errors.Is(errB, io.EOF) || errors.Is(errB, io.ErrUnexpectedEOF)
		if errA != nil && !endA {
			return 0, errA
		}
		if errB != nil && !endB {
			return 0, errB
		}
		if endA || endB {
			return -1, nil
		}
	}
}

func mismatch(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// explain fills in the member and detail of a difference from what kind of file it is.
func explain(d *Difference, a, b string) {
	name := d.File
	switch {
	case strings.HasSuffix(name, ".tar.xz"), strings.HasSuffix(name, ".tar.zst"), strings.HasSuffix(name, ".tar"):
		d.Member, d.Detail = explainTar(a, b)
	case strings.HasSuffix(name, ".ext4.zst"), strings.HasSuffix(name, ".ext4"):
		d.Detail = explainExt4(a, b)
	case strings.HasSuffix(name, ".json"), strings.HasSuffix(name, ".md"), name == SumsName:
		d.Detail = explainText(a, b)
	}
}

func explainTar(a, b string) (member, detail string) {
	ra, ca, err := Decompress(a, CompressionOf(a))
	if err != nil {
		return "", "unreadable: " + err.Error()
	}
	defer ca()
	rb, cb, err := Decompress(b, CompressionOf(b))
	if err != nil {
		return "", "unreadable: " + err.Error()
	}
	defer cb()
	ta, tb := tar.NewReader(ra), tar.NewReader(rb)
	for {
		ha, errA := ta.Next()
		hb, errB := tb.Next()
		switch {
		case errA == io.EOF && errB == io.EOF:
			return "", "every member and header is the same: the compressed stream differs (compressor version, level or thread count)"
		case errA == io.EOF:
			return hb.Name, "only in the second archive (file list differs)"
		case errB == io.EOF:
			return ha.Name, "only in the first archive (file list differs)"
		case errA != nil || errB != nil:
			return "", fmt.Sprintf("unreadable archive: %v / %v", errA, errB)
		}
		if ha.Name != hb.Name {
			return ha.Name, fmt.Sprintf("member order differs (%s here, %s in the second): entries not sorted, or the file list differs", ha.Name, hb.Name)
		}
		if f := headerDiff(ha, hb); f != "" {
			return ha.Name, f
		}
		off, err := readersDiff(ta, tb)
		if err != nil {
			return ha.Name, "unreadable: " + err.Error()
		}
		if off >= 0 {
			return ha.Name, fmt.Sprintf("content differs at byte %d of the member (embedded times, paths or build ids?)", off)
		}
	}
}

func headerDiff(a, b *tar.Header) string {
	type field struct {
		name, x, y, why string
	}
	for _, f := range []field{
		{"type", string(a.Typeflag), string(b.Typeflag), ""},
		{"mode", fmt.Sprintf("%o", a.Mode), fmt.Sprintf("%o", b.Mode), "umask or source modes"},
		{"owner", fmt.Sprintf("%d:%d %s:%s", a.Uid, a.Gid, a.Uname, a.Gname), fmt.Sprintf("%d:%d %s:%s", b.Uid, b.Gid, b.Uname, b.Gname), "the building user leaked in"},
		{"mtime", a.ModTime.UTC().String(), b.ModTime.UTC().String(), "a time not fixed to SOURCE_DATE_EPOCH"},
		{"size", fmt.Sprint(a.Size), fmt.Sprint(b.Size), ""},
		{"link target", a.Linkname, b.Linkname, ""},
		{"PAX records", fmt.Sprint(a.PAXRecords), fmt.Sprint(b.PAXRecords), "extended attributes or long-name records"},
	} {
		if f.x != f.y {
			s := fmt.Sprintf("%s %s vs %s", f.name, f.x, f.y)
			if f.why != "" {
				s += " (" + f.why + ")"
			}
			return s
		}
	}
	return ""
}

// ext4Fields are the superblock fields that change between otherwise equal images, by offset in the
// superblock (which starts 1024 bytes into the image).
var ext4Fields = []struct {
	off, size int64
	name      string
}{
	{0x2C, 4, "s_mtime (last mount time)"},
	{0x30, 4, "s_wtime (last write time)"},
	{0x34, 2, "s_mnt_count (mount count)"},
	{0x40, 4, "s_lastcheck (last check time)"},
	{0x68, 16, "s_uuid (file system UUID)"},
	{0xEC, 16, "s_hash_seed (directory hash seed)"},
	{0x108, 4, "s_mkfs_time (creation time)"},
	{0x174, 4, "s_kbytes_written"},
	{0x194, 4, "s_error_count"},
	{0x3FC, 4, "s_checksum (follows from the fields above)"},
}

func explainExt4(a, b string) string {
	ra, ca, err := Decompress(a, CompressionOf(a))
	if err != nil {
		return err.Error()
	}
	defer ca()
	rb, cb, err := Decompress(b, CompressionOf(b))
	if err != nil {
		return err.Error()
	}
	defer cb()
	off, err := readersDiff(ra, rb)
	switch {
	case err != nil:
		return "unreadable: " + err.Error()
	case off < 0:
		return "the images are the same: the compressed stream differs (compressor version, level or thread count)"
	case off >= 1024 && off < 2048:
		for _, f := range ext4Fields {
			if off-1024 >= f.off && off-1024 < f.off+f.size {
				return fmt.Sprintf("image byte %d: superblock field %s", off, f.name)
			}
		}
		return fmt.Sprintf("image byte %d: superblock offset %#x", off, off-1024)
	}
	bs := ext4BlockSize(a)
	return fmt.Sprintf("image byte %d, in block %d of %d bytes (file data, inodes: modes, owners, times; or the journal)", off, off/bs, bs)
}

// ext4BlockSize reads the block size from an image's superblock (1024 << s_log_block_size).
func ext4BlockSize(path string) int64 {
	r, done, err := Decompress(path, CompressionOf(path))
	if err != nil {
		return 1024
	}
	defer done()
	sb := make([]byte, 2048)
	if _, err := io.ReadFull(r, sb); err != nil {
		return 1024
	}
	log := int64(sb[1024+0x18]) | int64(sb[1024+0x19])<<8 | int64(sb[1024+0x1A])<<16 | int64(sb[1024+0x1B])<<24
	if log > 6 {
		return 1024
	}
	return 1024 << log
}

func explainText(a, b string) string {
	da, errA := os.ReadFile(a)
	db, errB := os.ReadFile(b)
	if errA != nil || errB != nil {
		return ""
	}
	la, lb := strings.Split(string(da), "\n"), strings.Split(string(db), "\n")
	for i := 0; i < len(la) || i < len(lb); i++ {
		var x, y string
		if i < len(la) {
			x = la[i]
		}
		if i < len(lb) {
			y = lb[i]
		}
		if x != y {
			return fmt.Sprintf("line %d: %q vs %q", i+1, clip(x), clip(y))
		}
	}
	return ""
}

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
