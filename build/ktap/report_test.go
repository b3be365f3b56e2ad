package ktap

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
)

const nested = `KTAP version 1
1..1
  KTAP version 1
  1..3
    KTAP version 1
    1..1
    # test_1: initializing test_1
    ok 1 test_1
  ok 1 example_test_1
    KTAP version 1
    1..2
    ok 1 test_1 # SKIP test_1 skipped
    ok 2 test_2
  ok 2 example_test_2
    KTAP version 1
    1..3
    ok 1 test_1
    # test_2: FAIL <&> ` + "\x01" + `
    not ok 2 test_2
    ok 3 test_3 # SKIP test_3 skipped
  not ok 3 example_test_3
not ok 1 main_test
`

func TestReports(t *testing.T) {
	root, err := Parse(strings.NewReader(nested), "guest")
	if err != nil {
		t.Fatal(err)
	}
	want := Summary{Tests: 6, Passed: 3, Failed: 1, Skipped: 2}
	if got := Summarize(root); got != want {
		t.Errorf("summary %+v, want %+v", got, want)
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, root); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Summary  Summary `json:"summary"`
		Name     string  `json:"name"`
		Subtests []*Test `json:"subtests"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Summary != want || back.Name != "guest" || back.Subtests[0].Name != "main_test" {
		t.Errorf("JSON report: %+v %v\n%s", back, err, js.String())
	}

	var x bytes.Buffer
	if err := WriteJUnit(&x, root); err != nil {
		t.Fatal(err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(x.Bytes(), &suites); err != nil {
		t.Fatalf("the JUnit report is not well-formed XML: %v\n%s", err, x.String())
	}
	if suites.Tests != 6 || suites.Failures != 1 || suites.Skipped != 2 || len(suites.Suites) != 3 {
		t.Errorf("JUnit totals %+v", suites)
	}
	failed := suites.Suites[2]
	if failed.Name != "guest.main_test.example_test_3" || failed.Cases[1].Failure == nil || failed.Cases[1].Name != "test_2" ||
		!strings.Contains(failed.Cases[1].Failure.Text, "FAIL <&>") {
		t.Errorf("the failing case: %+v", failed)
	}
	if s := suites.Suites[1].Cases[0].Skipped; s == nil || s.Message != "SKIP test_1 skipped" {
		t.Errorf("the skipped case: %+v", suites.Suites[1].Cases[0])
	}
}
