package artifact

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestExtractFiles: a fetched kernel tarball yields exactly the files asked for; an entry of another
// name or kind, or data after the archive, is refused.
func TestExtractFiles(t *testing.T) {
	names := map[string]string{"linux": "linux", "COPYING": "linux.COPYING"}
	tests := []struct {
		name    string
		write   func(tw *tar.Writer)
		wantErr string
	}{
		{"the named files", func(tw *tar.Writer) { addFile(tw, "linux", "elf", 0o755); addFile(tw, "COPYING", "gpl", 0o644) }, ""},
		{"another name", func(tw *tar.Writer) { addFile(tw, "../linux", "elf", 0o755) }, `unexpected entry "../linux"`},
		{"a link", func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "linux", Typeflag: tar.TypeSymlink, Linkname: "/etc/hostname"})
		}, `unexpected entry "linux"`},
		{"set-uid mode", func(tw *tar.Writer) { addFile(tw, "linux", "elf", 0o4755) }, ""},
		// Only the header: its size is refused before a byte is read.
		{"a file larger than any release's", func(tw *tar.Writer) {
			tw.WriteHeader(&tar.Header{Name: "linux", Typeflag: tar.TypeReg, Mode: 0o755, Size: MaxExtractedFile + 1})
		}, "more than any release file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			archive := filepath.Join(dir, "k.tar.xz")
			if err := WriteFile(archive, Xz, func(w io.Writer) error {
				tw := tar.NewWriter(w)
				tt.write(tw)
				tw.Close() // fails after a header without its body, which is the point there
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			os.Mkdir(out, 0o755)
			err := ExtractFiles(archive, Xz, out, names)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(filepath.Join(out, "linux"))
			if err != nil || fi.Mode() != 0o755 {
				t.Errorf("linux: %v, mode %v", err, fi)
			}
		})
	}
	t.Run("data after the archive", func(t *testing.T) {
		dir := t.TempDir()
		archive := filepath.Join(dir, "k.tar.xz")
		WriteFile(archive, Xz, func(w io.Writer) error {
			tw := tar.NewWriter(w)
			addFile(tw, "linux", "elf", 0o755)
			tw.Close()
			_, err := w.Write([]byte("appended"))
			return err
		})
		if err := ExtractFiles(archive, Xz, dir, names); err == nil || !strings.Contains(err.Error(), "follows the end") {
			t.Errorf("err = %v", err)
		}
	})
}

func addFile(tw *tar.Writer, name, body string, mode int64) {
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body)), ModTime: time.Unix(0, 0)})
	tw.Write([]byte(body))
}

// TestDecompressSparse: an image's zero blocks come out as holes, its bytes as they were; an existing
// file (or a link planted at the name) is not written through.
func TestDecompressSparse(t *testing.T) {
	dir := t.TempDir()
	image := make([]byte, 4<<20)
	copy(image, "superblock")
	copy(image[3<<20:], "inode table")
	src := filepath.Join(dir, "image.ext4.zst")
	if err := WriteFile(src, Zstd, func(w io.Writer) error { _, err := w.Write(image); return err }); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "image.ext4")
	if err := DecompressSparse(context.Background(), src, Zstd, dst, int64(len(image))); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	if string(got) != string(image) {
		t.Fatal("content differs")
	}
	var st syscall.Stat_t
	syscall.Stat(dst, &st)
	if st.Blocks*512 >= int64(len(image)) {
		t.Errorf("%d bytes allocated for a %d-byte image of two blocks: not sparse", st.Blocks*512, len(image))
	}
	link := filepath.Join(dir, "planted")
	os.Symlink(filepath.Join(dir, "victim"), link)
	if err := DecompressSparse(context.Background(), src, Zstd, link, int64(len(image))); err == nil {
		t.Error("wrote through a link planted at the name")
	}
	if _, err := os.Stat(filepath.Join(dir, "victim")); err == nil {
		t.Error("the link's target was created")
	}
}

// TestDecompressSparseBound: a file that expands past the size its record gives is refused while it
// is decompressed, whatever it holds (zeros, the cheap bomb, included).
func TestDecompressSparseBound(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "bomb.ext4.zst")
	if err := WriteFile(src, Zstd, func(w io.Writer) error { _, err := w.Write(make([]byte, 64<<20)); return err }); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(src); info.Size() > 64<<10 {
		t.Fatalf("the test's bomb is %d bytes: not a bomb", info.Size())
	}
	err := DecompressSparse(context.Background(), src, Zstd, filepath.Join(dir, "image.ext4"), 1<<20)
	if err == nil || !strings.Contains(err.Error(), "more than the 1048576 bytes expected") {
		t.Errorf("a 64 MiB image where 1 MiB is expected: %v", err)
	}
}
