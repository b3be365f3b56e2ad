package pipeline

import (
	"fmt"
	"io"
	"strings"

	"github.com/simple-uml/simple-uml/build/config"
)

// Settings prints the settings a target reads (every setting for ""): each key, the environment
// variable that overrides it, its default and the value this run would use.
func Settings(cfg config.Config, target string, getenv func(string) string, w io.Writer) error {
	settings, err := config.SettingsFor(target)
	if err != nil {
		return err
	}
	if target != "" {
		fmt.Fprintf(w, "settings `go tool mage %s` reads (%s, kernel.lock, or the variable):\n", target, config.FileName)
	}
	for _, s := range settings {
		value := s.Value(&cfg)
		from := ""
		if getenv(s.Env) != "" {
			from = " (from " + s.Env + ")"
		}
		fmt.Fprintf(w, "%-22s %-28s = %s%s\n    default %s; %s\n", s.Name(), s.Env, quoteEmpty(value), from, strings.ReplaceAll(s.Shown, "`", ""), strings.ReplaceAll(s.Doc, "`", ""))
	}
	return nil
}

func quoteEmpty(v string) string {
	if v == "" {
		return `""`
	}
	return v
}
