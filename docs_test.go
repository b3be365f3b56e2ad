package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// docFiles are the documents whose commands and links the tests below hold true: the front page,
// the guides it links, and SECURITY.md.
func docFiles(t *testing.T) []string {
	t.Helper()
	guides, err := filepath.Glob(filepath.Join("docs", "*.md"))
	if err != nil || len(guides) == 0 {
		t.Fatalf("no guides in docs/: %v", err)
	}
	return append([]string{"README.md", "SECURITY.md", filepath.Join("labs", "README.md"), filepath.Join("rootfs-recipes", "README.md")}, guides...)
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestReadmeIsShort keeps README.md a front page; the rest belongs in the guides of docs/.
func TestReadmeIsShort(t *testing.T) {
	const most = 150
	if n := strings.Count(readDoc(t, "README.md"), "\n"); n >= most {
		t.Errorf("README.md has %d lines; keep it under %d and move detail into a guide in docs/", n, most)
	}
}

// TestDocCommands: every `go tool mage` command the documents show runs as written: it names targets
// `go tool mage -l` lists, with their arguments and only flags `go tool mage -h <target>` documents,
// written -name=value (a bool also bare). A `mage <target>` reference names a target too.
func TestDocCommands(t *testing.T) {
	m := newMageHelp(t)
	for _, name := range docFiles(t) {
		commands := 0
		for _, code := range markdownCode(readDoc(t, name)) {
			for _, words := range mageCommands(code) {
				commands++
				if err := m.check(words); err != nil {
					t.Errorf("%s: `go tool mage %s`: %v", name, strings.Join(words, " "), err)
				}
			}
			if rest, ok := strings.CutPrefix(code, "mage "); ok {
				if words := strings.Fields(rest); len(words) == 0 || !m.isTarget(words[0]) {
					t.Errorf("%s: `%s` names no target of `go tool mage -l`", name, code)
				}
			}
		}
		if commands == 0 && name == "README.md" {
			t.Errorf("%s shows no `go tool mage` command: is its code read?", name)
		}
	}
}

// TestMageCommandCheck: the check of the test above catches what mage would refuse or misread.
func TestMageCommandCheck(t *testing.T) {
	m := newMageHelp(t)
	for _, tc := range []struct {
		code string
		want string // part of the error; empty: the command is right
	}{
		{"go tool mage kernel rootfs", ""},
		{"SUML_KERNEL_TREE=~/src/linux go tool mage kernel test -script=mycheck.sh", ""},
		{"go tool mage rootfs -recipe=void-musl", ""},
		{"go tool mage release -dryRun", ""},
		{"go tool mage release -dryRun=true -replace", ""},
		{"go tool mage repo $HOME/myrepo -key=$HOME/mykey.pem -signedBy=\"Your Name <you@example.org>\"", ""},
		{"go tool mage kunit -kunitconfig=fs/ext4 -filter='ext4*'   # a comment -bogus", ""},
		{"go tool mage labConsole router alice", ""},
		{"go tool mage lab <name>", ""},
		{"go tool mage -l", ""},
		{"go tool mage -h <target>", ""},
		{"go tool mage -h kunit", ""},
		{"go tool mage boot; ssh -p 2222 root@127.0.0.1", ""},
		{"go tool mage test -script checks.sh", "write it -script=<value>"},
		{"go tool mage rootfs -recipe", "write it -recipe=<value>"},
		{"go tool mage rootfs -Recipe=void-musl", "-h rootfs documents no flag -Recipe"},
		{"go tool mage kernel -script=x.sh", "-h kernel documents no flag -script"},
		{"go tool mage rootfsRecipe void-musl", "rootfsRecipe is no target"},
		{"go tool mage -h rootfsRecipe", "rootfsRecipe is no target"},
		{"go tool mage labConsole router", "labConsole takes <name> <guest>"},
		{"go tool mage verify -x", "verify takes <dirOrTag>"},
		{"go tool mage -bogus", "-bogus is not an option"},
	} {
		words := mageCommands(tc.code)
		if len(words) != 1 {
			t.Errorf("%q: %d mage commands found, want 1", tc.code, len(words))
			continue
		}
		err := m.check(words[0])
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.code, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want one saying %q", tc.code, err, tc.want)
		}
	}
}

// markdownCode returns a Markdown document's code: each line of its code blocks (indented or fenced,
// a line ending in \ joined with the next) and each code span of its other text (which may run over
// a line break).
func markdownCode(doc string) []string {
	var code, text []string
	lines := strings.Split(doc, "\n")
	fenced, inBlock := false, false
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "```"):
			fenced = !fenced
			continue
		case fenced || strings.HasPrefix(line, "    ") && (inBlock || i == 0 || strings.TrimSpace(lines[i-1]) == ""):
			inBlock = !fenced
			for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
				i++
				line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
			}
			code = append(code, strings.TrimSpace(line))
			continue
		}
		inBlock = strings.TrimSpace(line) == "" && inBlock
		text = append(text, line)
	}
	for _, paragraph := range strings.Split(strings.Join(text, "\n"), "\n\n") {
		for _, span := range codeSpan.FindAllStringSubmatch(paragraph, -1) {
			code = append(code, strings.Join(strings.Fields(span[1]), " "))
		}
	}
	return code
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// mageCommands returns the words after each "go tool mage" in a piece of code, up to the end of
// that shell command.
func mageCommands(code string) [][]string {
	var commands [][]string
	for _, part := range strings.Split(code, "go tool mage")[1:] {
		if part != "" && part[0] != ' ' {
			continue // "go tool mageX" is another word
		}
		commands = append(commands, shellWords(part))
	}
	return commands
}

// shellWords splits a shell command into its words as the shell would pass them (quotes removed),
// up to its end: an unquoted ;, &, |, ), a newline, or a # starting a word.
func shellWords(s string) []string {
	var words []string
	var word strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			word.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case strings.ContainsRune(";&|)\n", r) || r == '#' && !inWord:
			if inWord {
				words = append(words, word.String())
			}
			return words
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// mageHelp is what `go tool mage -h` and `go tool mage -l` say: mage's own options and the targets,
// with each target's usage read from `go tool mage -h <target>` when first asked for.
type mageHelp struct {
	t       *testing.T
	options map[string]bool // mage's own options, true for those that take a value
	targets map[string]*targetHelp
}

// targetHelp is one target's usage: its arguments, then its flags by name with their types.
type targetHelp struct {
	args  []string          // "<name>", in order
	flags map[string]string // "recipe" -> "string"
}

var (
	optionLine = regexp.MustCompile(`^\s+(-\w+)( <string>)?`)
	targetLine = regexp.MustCompile(`^  (\w+)\s`)
	flagLine   = regexp.MustCompile(`^\s+-(\w+)=<(\w+)>\s+\S`)
	usageArg   = regexp.MustCompile(`<\w+>`)
)

func newMageHelp(t *testing.T) *mageHelp {
	m := &mageHelp{t: t, options: map[string]bool{}, targets: map[string]*targetHelp{}}
	for _, line := range strings.Split(m.run("-h"), "\n") {
		if o := optionLine.FindStringSubmatch(line); o != nil {
			m.options[o[1]] = o[2] != ""
		}
	}
	_, list, _ := strings.Cut(m.run("-l"), "Targets:")
	for _, line := range strings.Split(list, "\n") {
		if target := targetLine.FindStringSubmatch(line); target != nil {
			m.targets[target[1]] = nil
		}
	}
	if len(m.options) == 0 || len(m.targets) == 0 {
		t.Fatalf("go tool mage -h and -l: %d options, %d targets read", len(m.options), len(m.targets))
	}
	return m
}

// run runs go tool mage as a person would; -l and -h read the magefile without compiling it.
func (m *mageHelp) run(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("go", append([]string{"tool", "mage"}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("go tool mage %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (m *mageHelp) isTarget(name string) bool {
	_, ok := m.targets[name]
	return ok
}

// usage returns a target's arguments and flags, as `go tool mage -h <target>` documents them.
func (m *mageHelp) usage(target string) *targetHelp {
	if h := m.targets[target]; h != nil {
		return h
	}
	help := m.run("-h", target)
	_, usage, _ := strings.Cut(help, "Usage:")
	usage, flags, _ := strings.Cut(usage, "Flags:")
	h := &targetHelp{flags: map[string]string{}}
	usage, _, _ = strings.Cut(strings.TrimSpace(usage), "[") // what follows [ is optional: the flags
	h.args = usageArg.FindAllString(usage, -1)
	for _, line := range strings.Split(flags, "\n") {
		if f := flagLine.FindStringSubmatch(line); f != nil {
			h.flags[f[1]] = f[2]
		}
	}
	m.targets[target] = h
	return h
}

// check says what is wrong with the words after "go tool mage": mage's own options, then targets,
// each with its arguments and flags. A placeholder (<target>) where a target belongs ends the check.
func (m *mageHelp) check(words []string) error {
	for len(words) > 0 && strings.HasPrefix(words[0], "-") {
		option := words[0]
		takesValue, ok := m.options[option]
		switch {
		case !ok:
			return fmt.Errorf("%s is not an option of go tool mage -h, nor a target", option)
		case option == "-h" && len(words) > 1:
			return m.checkTarget(words[1])
		case takesValue:
			words = words[1:]
		}
		words = words[1:]
	}
	for len(words) > 0 {
		target := words[0]
		if err := m.checkTarget(target); err != nil || isPlaceholder(target) {
			return err
		}
		h := m.usage(target)
		if len(words) <= len(h.args) || slices.ContainsFunc(words[1:len(h.args)+1], isFlag) {
			return fmt.Errorf("%s takes %s", target, strings.Join(h.args, " "))
		}
		words = words[1+len(h.args):]
		for len(words) > 0 && isFlag(words[0]) {
			if err := h.checkFlag(target, words[0]); err != nil {
				return err
			}
			words = words[1:]
		}
	}
	return nil
}

func (m *mageHelp) checkTarget(name string) error {
	if isPlaceholder(name) || m.isTarget(name) {
		return nil
	}
	return fmt.Errorf("%s is no target of go tool mage -l", name)
}

// checkFlag holds a flag to what mage parses: -name=value, or -name alone for a bool.
func (h *targetHelp) checkFlag(target, flag string) error {
	name, _, hasValue := strings.Cut(strings.TrimPrefix(flag, "-"), "=")
	kind, ok := h.flags[name]
	switch {
	case !ok:
		return fmt.Errorf("go tool mage -h %s documents no flag -%s", target, name)
	case !hasValue && kind != "bool":
		return fmt.Errorf("mage reads -name=value: write it -%s=<value>", name)
	}
	return nil
}

func isFlag(word string) bool { return strings.HasPrefix(word, "-") }

func isPlaceholder(word string) bool {
	return strings.HasPrefix(word, "<") && strings.HasSuffix(word, ">")
}

// TestDocLinks: every relative link of the documents leads to a file or folder that exists, and
// a link to a heading (#fragment) to a heading of that Markdown file.
func TestDocLinks(t *testing.T) {
	links := 0
	for _, name := range docFiles(t) {
		for _, link := range markdownLink.FindAllStringSubmatch(readDoc(t, name), -1) {
			target := link[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			path, fragment, _ := strings.Cut(target, "#")
			file := name
			if path != "" {
				file = filepath.Join(filepath.Dir(name), path)
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("%s links to %s, which does not exist: %v", name, target, err)
				continue
			}
			if fragment != "" && !slices.Contains(headingAnchors(readDoc(t, file)), fragment) {
				t.Errorf("%s links to %s: %s has no heading whose anchor is #%s (it has %v)", name, target, file, fragment, headingAnchors(readDoc(t, file)))
			}
		}
	}
	if links == 0 {
		t.Error("no relative links read: is the pattern right?")
	}
}

var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// headingAnchors returns the anchors GitHub gives a document's headings: lower case, spaces made
// hyphens, other punctuation dropped; a repeated one gets -1, -2, ...
func headingAnchors(doc string) []string {
	var anchors []string
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		title, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if fenced || !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		anchor := strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return unicode.ToLower(r)
			}
			return -1
		}, strings.TrimSpace(title))
		if n := seen[anchor]; n > 0 {
			anchors = append(anchors, fmt.Sprintf("%s-%d", anchor, n))
		} else {
			anchors = append(anchors, anchor)
		}
		seen[anchor]++
	}
	return anchors
}
