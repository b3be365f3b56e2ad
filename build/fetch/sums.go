package fetch

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/simple-uml/simple-uml/build/ident"
)

// Sums maps file names to their lowercase hex sha256, as a sha256sum list gives them.
type Sums map[string]string

// ParseSums reads a list as `sha256sum` writes it: "<sha256>  <name>" (text mode) or
// "<sha256> *<name>" (binary mode) per line; blank lines are skipped. Lists are signed or checked
// against a digest, and should be exact: any other line, a name that is not a plain file name (see
// ident.Name), a name listed twice or an empty list is an error naming what, the list.
func ParseSums(what string, text []byte) (Sums, error) {
	sums := Sums{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		sum, name, ok := strings.Cut(line, " ")
		if !ok || len(sum) != 64 || len(name) < 2 || (name[0] != ' ' && name[0] != '*') {
			return nil, fmt.Errorf("%s line %d: not \"<sha256>  <name>\": %q", what, n, clip(line))
		}
		if _, err := hex.DecodeString(sum); err != nil {
			return nil, fmt.Errorf("%s line %d: %q is not hex", what, n, sum)
		}
		name = name[1:]
		if err := ident.Name("file name", name); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", what, n, err)
		}
		if _, dup := sums[name]; dup {
			return nil, fmt.Errorf("%s line %d: %s listed twice", what, n, name)
		}
		sums[name] = strings.ToLower(sum)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(sums) == 0 {
		return nil, fmt.Errorf("%s lists no files", what)
	}
	return sums, nil
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}
