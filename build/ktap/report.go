package ktap

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"strings"
)

// Summary counts the leaf tests of a tree: those without subtests, which are what ran.
type Summary struct {
	Tests   int `json:"tests"`
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	Errors  int `json:"errors"`
}

// Summarize counts t's leaf tests by status.
func Summarize(t *Test) Summary {
	var s Summary
	t.Leaves(func(_ string, leaf *Test) {
		s.Tests++
		switch leaf.Status {
		case Pass:
			s.Passed++
		case Fail:
			s.Failed++
		case Skip:
			s.Skipped++
		default:
			s.Errors++
		}
	})
	return s
}

// Leaves calls f for every test under t without subtests, in order, with the names of the tests
// between t and it joined by "." ("" for t's own subtests).
func (t *Test) Leaves(f func(path string, leaf *Test)) { t.walkLeaves("", f) }

// walkLeaves calls f for every test without subtests, with the path of names of its parents.
func (t *Test) walkLeaves(path string, f func(path string, leaf *Test)) {
	for _, c := range t.Subtests {
		if len(c.Subtests) == 0 {
			f(path, c)
			continue
		}
		c.walkLeaves(join(path, c.Name), f)
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// WriteJSON writes the tree and its summary.
func WriteJSON(w io.Writer, t *Test) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Summary Summary `json:"summary"`
		*Test
	}{Summarize(t), t})
}

// JUnit XML, as CI systems read it (Jenkins' schema, which GitHub Actions' report actions and
// GitLab follow): a suite per test that has subtests, named by its path, holding its leaf tests.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the tree as JUnit XML. Text from the guest is escaped, and characters XML cannot
// hold are replaced.
func WriteJUnit(w io.Writer, t *Test) error {
	all := junitSuites{Name: t.Name}
	index := map[string]int{}
	t.Leaves(func(path string, leaf *Test) {
		suite := join(t.Name, path)
		i, ok := index[suite]
		if !ok {
			i = len(all.Suites)
			index[suite] = i
			all.Suites = append(all.Suites, junitSuite{Name: suite})
		}
		s := &all.Suites[i]
		c := junitCase{Name: leaf.Name, Classname: suite, SystemOut: strings.Join(leaf.Log, "\n")}
		msg := &junitMessage{Message: strings.TrimSpace(leaf.Directive + " " + leaf.Diagnostic), Text: c.SystemOut}
		switch leaf.Status {
		case Fail:
			c.Failure, s.Failures = msg, s.Failures+1
		case Skip:
			c.Skipped, s.Skipped = msg, s.Skipped+1
		case Error:
			c.Error, s.Errors = msg, s.Errors+1
		}
		s.Tests++
		s.Cases = append(s.Cases, c)
	})
	for _, s := range all.Suites {
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Errors += s.Errors
		all.Skipped += s.Skipped
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
