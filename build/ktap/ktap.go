// Package ktap reads test results in KTAP, the kernel's Test Anything Protocol
// (Documentation/dev-tools/ktap.rst), and TAP 13/14 as tests in a guest print them, into a tree of
// tests, and writes that tree as JSON and as JUnit XML for CI; Suites reads the suites a KUnit
// kernel lists. The output comes from a guest, whose root can print anything: the parser bounds what
// it keeps and never fails on a line it does not know (KTAP allows unknown lines anywhere).
package ktap

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/simple-uml/simple-uml/build/ui"
)

// Status is a test's outcome.
type Status string

// The outcomes: a result line's ok / not ok, changed by its directive.
const (
	Pass  Status = "pass"
	Fail  Status = "fail"
	Skip  Status = "skip"
	Error Status = "error" // a plan that does not match its results, or no result at all
)

// Test is one test and its subtests.
type Test struct {
	Name       string   `json:"name"`
	Version    string   `json:"version,omitempty"` // the root's version line: "KTAP version 1", "TAP version 13"; empty when there was none
	Status     Status   `json:"status"`
	Directive  string   `json:"directive,omitempty"`  // SKIP, TODO, XFAIL, TIMEOUT, ERROR
	Diagnostic string   `json:"diagnostic,omitempty"` // after the result line's "#"
	Log        []string `json:"log,omitempty"`        // the lines before its result: diagnostics, unknown lines
	Subtests   []*Test  `json:"subtests,omitempty"`
	Planned    int      `json:"planned,omitempty"` // the plan's N for its subtests; 0 when none was given
}

// Bounds on what is kept of a guest's output: it is untrusted and may be endless.
const (
	maxLineBytes = 4096
	maxLogLines  = 200
	maxTests     = 100000
	maxDepth     = 16
)

var (
	versionRE = regexp.MustCompile(`^(KTAP version 1|TAP version 1[34])$`)
	planRE    = regexp.MustCompile(`^1\.\.([0-9]+)`)
	resultRE  = regexp.MustCompile(`^(ok|not ok) ([0-9]+)(?: -)?(?: ([^#]*))?(?:#(.*))?$`)
	subtestRE = regexp.MustCompile(`^# Subtest: (.*)$`)
)

// Parse reads KTAP or TAP output and returns its top-level tests under one root named name. Lines
// before the first version line (a console's boot messages) are kept in the root's log; output with no
// version line at all gives a root with no subtests and status Error.
func Parse(r io.Reader, name string) (*Test, error) {
	p := &parser{root: &Test{Name: name}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		p.line(sc.Text())
	}
	if err := sc.Err(); err != nil && err != bufio.ErrTooLong {
		return nil, err
	}
	p.finish()
	return p.root, nil
}

// frame is an open level of nesting: the test whose subtests are being read, at an indentation.
type frame struct {
	test   *Test
	indent int
	log    []string // lines since the last result at this level: the next result's log
}

type parser struct {
	root    *Test
	stack   []*frame
	tests   int
	pending string // a "# Subtest: name" header seen for the next level
}

func (p *parser) line(raw string) {
	if len(raw) > maxLineBytes {
		raw = raw[:maxLineBytes]
	}
	// Names, diagnostics and logs are printed on terminals and in reports: no control sequence of the
	// guest's gets there.
	raw = ui.Visible(raw)
	raw = strings.TrimRight(raw, "\r")
	text := strings.TrimLeft(raw, " \t")
	indent := len(raw) - len(text)
	switch {
	case versionRE.MatchString(text):
		if len(p.stack) == 0 {
			p.root.Version = text
		}
		p.open(indent)
		return
	case len(p.stack) == 0:
		appendLog(&p.root.Log, raw)
		return
	}
	if m := resultRE.FindStringSubmatch(text); m != nil {
		// A result less indented than the level being read ends that level: it is the result of the
		// test whose subtests those were.
		var ended *Test
		for len(p.stack) > 1 && indent < p.top().indent {
			ended = p.pop(ended)
		}
		p.result(m, ended)
		return
	}
	if m := planRE.FindStringSubmatch(text); m != nil && indent == p.top().indent {
		if n, err := strconv.Atoi(m[1]); err == nil {
			p.top().test.Planned = n
		}
		return
	}
	if m := subtestRE.FindStringSubmatch(text); m != nil {
		p.pending = strings.TrimSpace(m[1])
	}
	appendLog(&p.top().log, strings.TrimSpace(text))
}

// open starts a level: the first version line opens the root's, a more indented one a subtest's.
func (p *parser) open(indent int) {
	if len(p.stack) == 0 {
		p.stack = append(p.stack, &frame{test: p.root, indent: indent})
		return
	}
	if indent <= p.stack[0].indent {
		appendLog(&p.top().log, "KTAP version line again")
		return
	}
	var ended *Test
	for len(p.stack) > 1 && indent <= p.top().indent {
		ended = p.pop(ended)
	}
	if ended != nil {
		p.orphan(p.top().test, ended)
	}
	if len(p.stack) >= maxDepth {
		return
	}
	parent := p.top()
	t := &Test{Name: p.pending, Log: parent.log}
	parent.log = nil
	p.pending = ""
	p.stack = append(p.stack, &frame{test: t, indent: indent})
}

func (p *parser) top() *frame { return p.stack[len(p.stack)-1] }

// pop ends the innermost level and returns its test. inner, a level ended just before inside it
// with no result line of its own, is recorded in it as an error.
func (p *parser) pop(inner *Test) *Test {
	f := p.top()
	p.stack = p.stack[:len(p.stack)-1]
	if inner != nil {
		p.orphan(f.test, inner)
	}
	appendLogs(&f.test.Log, f.log)
	return f.test
}

// orphan records t, whose subtests ended with no result line for it, under parent as an error. It
// counts against maxTests like a test with a result line.
func (p *parser) orphan(parent, t *Test) {
	if p.tests >= maxTests {
		return
	}
	p.tests++
	t.Status = Error
	t.Diagnostic = "no result line"
	parent.Subtests = append(parent.Subtests, t)
}

// result records a result line at the innermost open level; ended is the test whose subtests it
// closed, nil for a test without subtests.
func (p *parser) result(m []string, ended *Test) {
	f := p.top()
	if p.tests >= maxTests {
		return
	}
	p.tests++
	t := ended
	if t == nil {
		t = &Test{}
	}
	appendLogs(&t.Log, f.log)
	f.log = nil
	t.Name = strings.TrimSpace(m[3])
	t.Status = Pass
	if m[1] == "not ok" {
		t.Status = Fail
	}
	directive, diagnostic, _ := strings.Cut(strings.TrimSpace(m[4]), " ")
	switch strings.ToUpper(directive) {
	case "SKIP":
		t.Status, t.Directive = Skip, "SKIP"
	case "TODO", "XFAIL":
		t.Directive = strings.ToUpper(directive)
	case "TIMEOUT", "ERROR":
		t.Status, t.Directive = Fail, strings.ToUpper(directive)
	default:
		diagnostic = strings.TrimSpace(m[4])
	}
	t.Diagnostic = strings.TrimSpace(diagnostic)
	f.test.Subtests = append(f.test.Subtests, t)
}

func (p *parser) finish() {
	var ended *Test
	for len(p.stack) > 1 {
		ended = p.pop(ended)
	}
	if ended != nil {
		p.orphan(p.root, ended)
	}
	if len(p.stack) == 1 {
		appendLogs(&p.root.Log, p.top().log)
	}
	p.root.Status = p.root.rollUp()
}

// rollUp is a parent's status from its subtests, as ktap.rst's examples bubble them up: a failure or
// error fails it, skips do not, and no subtests at all (or a plan the results do not meet) is an error.
func (t *Test) rollUp() Status {
	if len(t.Subtests) == 0 {
		return Error
	}
	status := Pass
	for _, s := range t.Subtests {
		if s.Status == Fail || s.Status == Error {
			status = Fail
		}
	}
	if t.Planned > 0 && t.Planned != len(t.Subtests) {
		return Error
	}
	return status
}

func appendLogs(log *[]string, lines []string) {
	for _, l := range lines {
		appendLog(log, l)
	}
}

func appendLog(log *[]string, line string) {
	if len(*log) < maxLogLines {
		*log = append(*log, line)
	}
}
