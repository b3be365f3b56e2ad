package artifact

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/simple-uml/simple-uml/build/confine"
	"github.com/simple-uml/simple-uml/build/untar"
)

// CompressionOf is the compression a file name's suffix says: .xz, .zst, or none ("").
func CompressionOf(name string) Compression {
	switch {
	case strings.HasSuffix(name, ".xz"):
		return Xz
	case strings.HasSuffix(name, ".zst"):
		return Zstd
	}
	return ""
}

// Decompress opens path through the decompressor of c ("": read as it is). The caller runs the
// returned close.
func Decompress(path string, c Compression) (io.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	switch c {
	case Xz:
		xr, err := xz.NewReader(r)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		return xr, func() { f.Close() }, nil
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		return zr, func() { zr.Close(); f.Close() }, nil
	}
	return r, func() { f.Close() }, nil
}

// MaxExtractedFile bounds each file ExtractFiles writes (a kernel is tens of megabytes), as the
// number of entries is bounded: the archive is checked against its digest, but the digest comes
// with the release.
const MaxExtractedFile = 1 << 30

// ExtractFiles reads the tar archive at path, compressed with c, whose entries must all be regular files
// named in names, and writes each into dir under the name it maps to, with its mode (0755 at most).
// Any other entry, or data after the archive's end, is an error: the archive comes from outside.
func ExtractFiles(path string, c Compression, dir string, names map[string]string) error {
	what := filepath.Base(path)
	r, closeArchive, err := Decompress(path, c)
	if err != nil {
		return err
	}
	defer closeArchive()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	var count untar.Counter
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := count.Next(what); err != nil {
			return err
		}
		dst, ok := names[hdr.Name]
		if !ok || hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("%s: unexpected entry %q", what, hdr.Name)
		}
		if hdr.Size > MaxExtractedFile {
			return fmt.Errorf("%s: %s is %d bytes, more than any release file (%d): not the archive it claims to be", what, hdr.Name, hdr.Size, int64(MaxExtractedFile))
		}
		if err := confine.WriteNew(root, dst, tr, os.FileMode(hdr.Mode&0o755), time.Time{}); err != nil {
			return err
		}
	}
	if err := untar.CheckEnd(r); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// DecompressSparse writes the content of path, decompressed from c, to a new file dst, seeking over all-zero
// blocks so that a file system image stays sparse. More than limit bytes is an error: the file comes
// from outside and is checked against its digest only once written, so a small file that expands
// without end must not fill the disk (or take the night) first.
func DecompressSparse(ctx context.Context, path string, c Compression, dst string, limit int64) error {
	r, closeSrc, err := Decompress(path, c)
	if err != nil {
		return err
	}
	defer closeSrc()
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	if err := copySparse(ctx, f, io.LimitReader(r, limit+1)); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if info, err := f.Stat(); err == nil && info.Size() > limit {
		f.Close()
		return fmt.Errorf("%s: decompresses to more than the %d bytes expected: not the file it claims to be", filepath.Base(path), limit)
	}
	return f.Close()
}

func copySparse(ctx context.Context, f *os.File, r io.Reader) error {
	buf := make([]byte, 64<<10)
	zero := make([]byte, len(buf))
	var size int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if bytes.Equal(buf[:n], zero[:n]) {
				if _, err := f.Seek(int64(n), io.SeekCurrent); err != nil {
					return err
				}
			} else if _, err := f.Write(buf[:n]); err != nil {
				return err
			}
			size += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	return f.Truncate(size)
}
