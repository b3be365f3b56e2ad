package lab

import (
	"fmt"
	"strings"

	"github.com/simple-uml/simple-uml/build/run"
)

// Commands is a `run` key, a guest's or a check's: one shell command (a string) or several (a list of
// strings), run in order as root on the guest's console, stopping at the first that fails.
type Commands struct {
	List []string
	// other is what the file gave instead ("a number"), kept for validate, which knows whose key it is.
	other string
}

// UnmarshalTOML takes a string or a list of strings. A value of another type is no error here,
// where the guest or check it belongs to is not known yet: validate refuses it by name.
func (c *Commands) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		c.List = []string{v}
	case []any:
		for i, item := range v {
			s, ok := item.(string)
			if !ok {
				c.List, c.other = nil, fmt.Sprintf("a list whose item %d is %s", i+1, tomlType(item))
				return nil
			}
			c.List = append(c.List, s)
		}
	default:
		c.other = tomlType(v)
	}
	return nil
}

// tomlType names the type of a value the TOML decoder gives, for a person who wrote it.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64, float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "a list"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}

// check refuses a value of another type and an empty command.
func (c Commands) check() error {
	if c.other != "" {
		return fmt.Errorf(`run is %s: want a shell command ("...") or a list of them (["...", "..."]), run in order`, c.other)
	}
	for i, cmd := range c.List {
		switch {
		case strings.TrimSpace(cmd) != "":
		case len(c.List) == 1:
			return fmt.Errorf("run is empty")
		default:
			return fmt.Errorf("run's command %d is empty", i+1)
		}
	}
	return nil
}

// Shell is the commands as one command line: each in turn in the same shell (eval), as long as the
// ones before it succeeded, so that its output and exit status are theirs together.
func (c Commands) Shell() string {
	if len(c.List) == 1 {
		return c.List[0]
	}
	evals := make([]string, len(c.List))
	for i, cmd := range c.List {
		evals[i] = "eval " + run.Quote(cmd)
	}
	return strings.Join(evals, " && ")
}
