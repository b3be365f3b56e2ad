// Package ident validates identifiers that come from outside (indexes, manifests, API answers)
// where they enter the program, so that none of them can carry a path separator, "..", white space
// or a control character into a file name, a lock file, a log line or a command; and a name that
// names nothing gets one error that lists what exists.
//
// Limits: these are grammars of safe names, not of every name upstream allows; a valid upstream
// name outside them (none is known) is refused with an error naming it.
package ident

import (
	"fmt"
	"io/fs"
	"strings"
)

// SHA256 checks that s is a sha256 digest as the project stores it: exactly 64 lowercase hex digits.
func SHA256(s string) error {
	if len(s) != 64 || strings.IndexFunc(s, func(r rune) bool { return !isLowerHex(r) }) >= 0 {
		return fmt.Errorf("sha256 %q is not 64 hex digits (lowercase)", clip(s))
	}
	return nil
}

func isLowerHex(r rune) bool { return r >= '0' && r <= '9' || r >= 'a' && r <= 'f' }

// Name checks a single file-name-safe word of what: ASCII letters, digits and "._+-~", starting with
// a letter or digit (so never "." or ".." or an option), at most 255 bytes.
func Name(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > 255 {
		return fmt.Errorf("%s %q is longer than 255 bytes", what, clip(s))
	}
	if !isAlnum(rune(s[0])) {
		return fmt.Errorf("%s %q must start with a letter or digit", what, clip(s))
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !isAlnum(r) && !strings.ContainsRune("._+-~", r) }); i >= 0 {
		return fmt.Errorf("%s %q holds %q, which is not allowed (letters, digits and . _ + - ~ only)", what, clip(s), s[i:i+1])
	}
	return nil
}

func isAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// clip keeps an error message short and on one line whatever the hostile input was.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

// Memory bounds: less than MinMemory does not boot a guest's user space; more than MaxMemory is no
// single guest's on the machines this project runs on.
const (
	MinMemory = 32 << 20
	MaxMemory = 64 << 30
)

// Memory checks a guest memory size as the kernel command line's mem= gets it: a whole number and K,
// M or G ("256M", "1G"), from MinMemory to MaxMemory. It returns the size in bytes. Nothing else
// reaches the command line, where a space would start a parameter of its own.
func Memory(what, s string) (int64, error) {
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("%s %q: %s; want a size such as 256M or 1G (a whole number and K, M or G, from 32M to 64G)", what, clip(s), why)
	}
	if len(s) < 2 || len(s) > 12 {
		return bad("not a size")
	}
	digits, unit := s[:len(s)-1], s[len(s)-1]
	shift := map[byte]uint{'K': 10, 'M': 20, 'G': 30}[unit]
	if shift == 0 {
		return bad("no unit")
	}
	if digits[0] == '0' || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return bad("not a whole number")
	}
	var n int64
	for _, d := range digits {
		n = n*10 + int64(d-'0')
	}
	if n > MaxMemory>>shift || n<<shift < MinMemory { // compared before shifting: no overflow
		return bad("out of range")
	}
	return n << shift, nil
}

// Unknown is the error for a name that is not among those that exist: what it is a name of ("lab"),
// the name, where it was looked for (a folder, a file) and the names there, so that the user can pick
// one. It is an fs.ErrNotExist, as the missing file it often stands for.
func Unknown(what, name, where string, known []string) error {
	return &unknownError{what: what, name: name, where: where, known: known}
}

type unknownError struct {
	what, name, where string
	known             []string
}

func (e *unknownError) Error() string {
	if len(e.known) == 0 {
		return fmt.Sprintf("unknown %s %q: %s has none", e.what, clip(e.name), e.where)
	}
	return fmt.Sprintf("unknown %s %q in %s: %s", e.what, clip(e.name), e.where, strings.Join(e.known, ", "))
}

func (e *unknownError) Is(target error) bool { return target == fs.ErrNotExist }
