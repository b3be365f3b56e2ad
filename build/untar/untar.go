// Package untar holds what every reader of an untrusted tar stream checks besides its entries: how
// many entries there are, and that nothing but the end-of-archive padding follows the last one.
// A tar reader stops at the end-of-archive marker without reading on, so a decompressor never
// sees what follows and cannot refuse trailing garbage by itself; host tools (xz -dc, tar) refuse it.
package untar

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxEntries bounds the entries of one archive: Linux's source tree has about 90,000 and Void's
// largest packages fewer, while a few hundred kilobytes of xz can describe millions of empty files.
const MaxEntries = 1 << 19

// maxPadding bounds what may follow the end-of-archive marker: tar pads to its record size (10 KiB by
// default; some writers use larger blocking factors).
const maxPadding = 1 << 20

// Counter counts entries and fails past MaxEntries.
type Counter struct{ n int }

// Next counts one more entry of the named archive.
func (c *Counter) Next(archive string) error {
	if c.n++; c.n > MaxEntries {
		return fmt.Errorf("%s has more than %d entries; no real archive of its kind does", archive, MaxEntries)
	}
	return nil
}

// CheckEnd reads what the decompressed stream r holds after the tar reader's end of archive: only
// zero padding may follow, and the decompressor must then end cleanly (its own checks of the
// stream's trailer run only when it is read to the end).
func CheckEnd(r io.Reader) error {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if n > 0 && (bytes.IndexFunc(buf[:n], func(r rune) bool { return r != 0 }) >= 0 || total > maxPadding) {
			return errors.New("data follows the end of the archive: the file is corrupt or was tampered with")
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("after the end of the archive: %w", err)
		}
	}
}
