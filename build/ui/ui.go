// Package ui prints progress for long work on a terminal and nothing when output goes to a log, so CI
// logs stay clean while a person at a terminal sees that work is moving.
package ui

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// IsTerminal reports whether f is a character device (a terminal), which is where progress belongs.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Progress redraws one status line at most every interval. The zero value, or one made for a writer
// that is not a terminal, prints nothing.
type Progress struct {
	w        io.Writer
	label    string
	interval time.Duration

	mu    sync.Mutex
	last  time.Time
	shown bool
}

// NewProgress returns a progress line on stderr when stderr is a terminal, or a silent one otherwise.
func NewProgress(label string) *Progress {
	if !IsTerminal(os.Stderr) {
		return &Progress{}
	}
	return &Progress{w: os.Stderr, label: label, interval: 200 * time.Millisecond}
}

// Update redraws the line with done out of total (total <= 0 when unknown), in bytes.
func (p *Progress) Update(done, total int64) {
	if !p.due() {
		return
	}
	defer p.mu.Unlock()
	if total > 0 {
		fmt.Fprintf(p.w, "\r\033[K%s  %s / %s  %3d%%", p.label, Size(done), Size(total), done*100/total)
	} else {
		fmt.Fprintf(p.w, "\r\033[K%s  %s", p.label, Size(done))
	}
}

// due reports whether a redraw is due, and if so returns with p.mu held.
func (p *Progress) due() bool {
	if p == nil || p.w == nil {
		return false
	}
	p.mu.Lock()
	now := time.Now()
	if now.Sub(p.last) < p.interval {
		p.mu.Unlock()
		return false
	}
	p.last = now
	p.shown = true
	return true
}

// Done clears the line.
func (p *Progress) Done() {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// Size formats a byte count for people.
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Text redraws the line with a message.
func (p *Progress) Text(msg string) {
	if !p.due() {
		return
	}
	defer p.mu.Unlock()
	if len(msg) > 100 {
		msg = msg[:100]
	}
	fmt.Fprintf(p.w, "\r\033[K%s  %s", p.label, msg)
}

// LineStatus is a writer that shows the latest complete line written to it (a build's "CC foo.o")
// with a count of lines, on a terminal only.
type LineStatus struct {
	p       *Progress
	n       int
	partial []byte
}

// NewLineStatus returns a LineStatus labelled label.
func NewLineStatus(label string) *LineStatus { return &LineStatus{p: NewProgress(label)} }

func (s *LineStatus) Write(b []byte) (int, error) {
	if s.p.w == nil {
		return len(b), nil
	}
	data := append(s.partial, b...)
	last := ""
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		last = string(data[:i])
		s.n++
		data = data[i+1:]
	}
	s.partial = append(s.partial[:0], data...)
	if last != "" {
		s.p.Text(fmt.Sprintf("[%d] %s", s.n, last))
	}
	return len(b), nil
}

// Done clears the status line.
func (s *LineStatus) Done() { s.p.Done() }

// Visible makes text that came from a guest (its console, its tests' output) harmless to print on
// a terminal outside the interactive console: every control character but tab and newline, the C1
// controls (a terminal may take U+009B as the start of a command, as it takes ESC [), the characters
// that reorder text (bidirectional overrides) and bytes that are not UTF-8 are shown as \x.., \u....,
// so that no title change, clipboard write, colour or query reaches the terminal, and the reader
// sees that something was there. A carriage return before a newline is dropped (consoles end lines
// with both).
func Visible(s string) string {
	if strings.IndexFunc(s, needsEscape) < 0 && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\r' && strings.HasPrefix(s[i+1:], "\n"):
		case r < 0x80 && needsEscape(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(r rune) bool {
	switch {
	case r == '\t' || r == '\n':
		return false
	case r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e || r == 0x200f, r == 0x061c:
		return true
	}
	return false
}

// VisibleWriter writes to w what is written to it through Visible, without carriage returns (a
// console's line ends): a guest's console log printed on the terminal sends it no control sequence.
// (A character split between two writes shows as escapes.)
func VisibleWriter(w io.Writer) io.Writer { return visibleWriter{w} }

type visibleWriter struct{ w io.Writer }

func (v visibleWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(v.w, Visible(strings.ReplaceAll(string(p), "\r", ""))); err != nil {
		return 0, err
	}
	return len(p), nil
}
