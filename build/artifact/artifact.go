// Package artifact writes release assets that are the same bytes on every machine: tar archives with
// sorted entries, root ownership, no user names and one fixed time, compressed with fixed settings;
// and SHA256SUMS files in the format `sha256sum -c` reads, with a verifier for them.
package artifact

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/simple-uml/simple-uml/build/digest"
	"github.com/simple-uml/simple-uml/build/fetch"
	"github.com/simple-uml/simple-uml/build/files"
)

// Entry is one file of an archive: its name in the archive and where its bytes are on the host; or,
// with Dir, a folder.
type Entry struct {
	Name   string
	Source string
	Mode   int64 // permission bits; 0 takes them from Source
	Dir    bool  // a folder, with Mode, and no Source
	Owner  int   // its uid and gid (a container image's writable folder); 0 is root
	// ModTime is its time, when not the archive's (a container image's root filesystem image,
	// whose time UML compares with what its COW file recorded).
	ModTime time.Time
}

// WriteTar writes the entries, sorted by name, as a tar whose headers carry only what the files
// are: mode, size, owner (uid/gid 0 unless an entry says) and the given time.
func WriteTar(w io.Writer, entries []Entry, epoch time.Time) error {
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	tw := tar.NewWriter(w)
	for i, e := range sorted {
		if i > 0 && sorted[i-1].Name == e.Name {
			return fmt.Errorf("archive entry %s is listed twice", e.Name)
		}
		if e.Dir {
			hdr := &tar.Header{Name: e.Name + "/", Mode: e.Mode, Uid: e.Owner, Gid: e.Owner, ModTime: epoch.UTC(), Typeflag: tar.TypeDir, Format: tar.FormatPAX} // PAX: any length
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(e.Source)
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		if !fi.Mode().IsRegular() {
			f.Close()
			return fmt.Errorf("%s: only regular files go into release archives", e.Source)
		}
		mode := e.Mode
		if mode == 0 {
			mode = int64(fi.Mode().Perm())
		}
		mtime := epoch
		if !e.ModTime.IsZero() {
			mtime = e.ModTime
		}
		hdr := &tar.Header{Name: e.Name, Mode: mode, Size: fi.Size(), Uid: e.Owner, Gid: e.Owner, ModTime: mtime.UTC(), Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if len(e.Name) > 100 {
			hdr.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(hdr); err != nil {
			f.Close()
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", e.Source, err)
		}
	}
	return tw.Close()
}

// Compression names the compressions assets use.
type Compression string

const (
	Xz   Compression = "xz"
	Zstd Compression = "zstd"
)

// compressor wraps w; its settings are fixed (one thread, fixed level) so output depends only on input.
func compressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Xz:
		return xz.WriterConfig{DictCap: 8 << 20}.NewWriter(w)
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedBetterCompression))
	}
	return nil, fmt.Errorf("unknown compression %q", c)
}

// WriteFile writes path atomically (a temporary name renamed at the end) from fill's output,
// compressed with c.
func WriteFile(path string, c Compression, fill func(io.Writer) error) error {
	return files.WriteAtomic(path, 0o644, func(w io.Writer) error {
		cw, err := compressor(w, c)
		if err != nil {
			return err
		}
		if err := fill(cw); err != nil {
			cw.Close()
			return err
		}
		return cw.Close()
	})
}

// Sums maps file names to their sha256.
type Sums map[string]string

// SumsName is the checksum file of a release.
const SumsName = "SHA256SUMS"

// Hash adds the sha256 of dir/name for each name.
func (s Sums) Hash(dir string, names ...string) error {
	// Through a root, and regular files only: a link in a release folder must not make another file
	// (of the host) be hashed, listed or published as an asset.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, n := range names {
		fi, err := root.Lstat(n)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", n)
		}
		f, err := root.Open(n)
		if err != nil {
			return err
		}
		sum, err := digest.Reader(f)
		f.Close()
		if err != nil {
			return err
		}
		s[n] = sum
	}
	return nil
}

// Bytes renders the sums as `sha256sum` prints them (two spaces: text mode), sorted by name.
func (s Sums) Bytes() []byte {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&b, "%s  %s\n", s[n], n)
	}
	return b.Bytes()
}

// ParseSums reads a release's SHA256SUMS (see fetch.ParseSums).
func ParseSums(data []byte) (Sums, error) {
	s, err := fetch.ParseSums(SumsName, data)
	return Sums(s), err
}

// ErrMismatch is a file whose content differs from its listed sha256.
var ErrMismatch = errors.New("sha256 differs from SHA256SUMS")

// VerifyDir checks every file SHA256SUMS in dir lists, and that dir holds no other file (a stray
// file would be published with the release). It returns the sums and one problem per bad, missing
// or stray file.
func VerifyDir(dir string) (Sums, []string, error) {
	data, err := os.ReadFile(filepath.Join(dir, SumsName))
	if err != nil {
		return nil, nil, err
	}
	want, err := ParseSums(data)
	if err != nil {
		return nil, nil, err
	}
	var problems []string
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		got := Sums{}
		if err := got.Hash(dir, n); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		if got[n] != want[n] {
			problems = append(problems, fmt.Sprintf("%s: %v (sha256 %s, listed %s)", n, ErrMismatch, got[n], want[n]))
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		if _, listed := want[e.Name()]; !listed && e.Name() != SumsName && !strings.HasPrefix(e.Name(), ".") {
			problems = append(problems, fmt.Sprintf("%s: not listed in %s: a stray file; remove it, or make the release again (`go tool mage dist`)", e.Name(), SumsName))
		}
	}
	return want, problems, nil
}
