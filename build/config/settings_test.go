package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestSettingsTable: each setting names the field its key decodes into, its environment variable
// follows the rule and sets that field, and every key of the files' tables has a setting.
func TestSettingsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range Settings {
		table, key, _ := strings.Cut(s.Key, ".")
		want := "SUML_" + strings.ToUpper(table+"_"+key)
		switch {
		case s.File == LockName:
			want = "SUML_KERNEL_" + strings.ToUpper(s.Key)
		case table == "paths":
			want = "SUML_" + strings.ToUpper(key)
		}
		if s.Env != want {
			t.Errorf("%s: environment name %s, want %s (guessable from the key)", s.Name(), s.Env, want)
		}
		if seen[s.Env] {
			t.Errorf("%s declared twice", s.Env)
		}
		seen[s.Env] = true
		// The key, written in its file, reaches the setting's field.
		doc := fmt.Sprintf("[%s]\n%s = %s\n", table, key, tomlValue(t, s.Default))
		var c Config
		target := any(&c)
		if s.File == LockName {
			doc, target = fmt.Sprintf("%s = %s\n", s.Key, tomlValue(t, s.Default)), &c.Pin
		}
		if _, err := toml.Decode(doc, target); err != nil {
			t.Fatalf("%s: %v", s.Name(), err)
		}
		if got := reflect.ValueOf(s.field(&c)).Elem().Interface(); !reflect.DeepEqual(got, s.Default) && !(s.Default == "" && got == "") {
			t.Errorf("%s = %v in the file gives the field %v: the key and field disagree", s.Name(), s.Default, got)
		}
	}
	// Every key the files know has a setting.
	for _, table := range []any{Kernel{}, Rootfs{}, Boot{}, Test{}, Release{}, Paths{}} {
		rt := reflect.TypeOf(table)
		for i := range rt.NumField() {
			key := strings.ToLower(rt.Name()) + "." + rt.Field(i).Tag.Get("toml")
			if !hasSetting(FileName, key) {
				t.Errorf("%s has no setting", key)
			}
		}
	}
}

func hasSetting(file, key string) bool {
	for _, s := range Settings {
		if s.File == file && s.Key == key {
			return true
		}
	}
	return false
}

func tomlValue(t *testing.T, v any) string {
	var b strings.Builder
	if err := toml.NewEncoder(&b).Encode(map[string]any{"v": v}); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(strings.TrimPrefix(b.String(), "v = "))
}

// settingsRow is a setting's row in the tables of docs/settings.md.
func settingsRow(s Setting) string {
	key := "`" + s.Key + "`"
	if s.File == LockName {
		key = "`" + LockName + "` `" + s.Key + "`"
	}
	env := "`" + s.Env + "`"
	for _, a := range s.Aliases {
		env += " (was `" + a + "`)"
	}
	return fmt.Sprintf("| %s | %s | %s | %s |", key, env, s.Shown, s.Doc)
}

// settingsTable is the head of a table of settings; docs/settings.md holds them all.
const settingsTable = "| key | environment | default | meaning |"

// TestSettingsDocumented holds the tables of settings in docs/settings.md and simple-uml.toml's
// comments to Settings: a row per setting, saying its key, variable, default and meaning as declared;
// every key in simple-uml.toml at its default, its comment naming its variable.
func TestSettingsDocumented(t *testing.T) {
	reference, err := os.ReadFile(filepath.Join("..", "..", "docs", "settings.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	inTable := false
	for _, line := range strings.Split(string(reference), "\n") {
		switch {
		case line == settingsTable:
			inTable = true
		case inTable && strings.HasPrefix(line, "|---"):
		case inTable && strings.HasPrefix(line, "|"):
			rows[line]++
		default:
			inTable = false
		}
	}
	for _, s := range Settings {
		want := settingsRow(s)
		if rows[want] != 1 {
			t.Errorf("docs/settings.md has %d rows for %s; want one:\n%s", rows[want], s.Name(), want)
		}
		delete(rows, want)
	}
	for row := range rows {
		t.Errorf("docs/settings.md's row names no setting as declared (build/config/settings.go): %s", row)
	}

	file := filepath.Join("..", "..", FileName)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	if err := DecodeFile(file, &c, "docs/settings.md"); err != nil {
		t.Fatal(err)
	}
	comments := commentsAbove(string(data))
	for _, s := range Settings {
		if s.File != FileName {
			continue
		}
		if got := reflect.ValueOf(s.field(&c)).Elem().Interface(); !reflect.DeepEqual(got, s.Default) {
			t.Errorf("%s: %s = %v, the default is %v", FileName, s.Key, got, s.Default)
		}
		comment, ok := comments[s.Key]
		if !ok {
			t.Errorf("%s does not list %s", FileName, s.Key)
		} else if !strings.Contains(comment, s.Env) {
			t.Errorf("%s: the comment of %s does not name %s", FileName, s.Key, s.Env)
		}
	}
}

// TestSettingsInOnePlace: the settings' tables are in docs/settings.md alone, so that no copy the
// test above does not read can fall behind Settings.
func TestSettingsInOnePlace(t *testing.T) {
	root := filepath.Join("..", "..")
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range append(docs, filepath.Join(root, "README.md"), filepath.Join(root, "labs", "README.md")) {
		if filepath.Base(doc) == "settings.md" {
			continue
		}
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(strings.Split(string(data), "\n"), settingsTable) {
			t.Errorf("%s has a table of settings: link docs/settings.md instead", doc)
		}
	}
}

var tableLine, keyLine = regexp.MustCompile(`^\[(\w+)\]$`), regexp.MustCompile(`^(\w+) = `)

// commentsAbove maps each "table.key" of a TOML file to the comment lines right above it.
func commentsAbove(text string) map[string]string {
	out := map[string]string{}
	table, comment := "", ""
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
			comment += line + "\n"
			continue
		case tableLine.MatchString(line):
			table = tableLine.FindStringSubmatch(line)[1]
		case keyLine.MatchString(line):
			out[table+"."+keyLine.FindStringSubmatch(line)[1]] = comment
		}
		comment = ""
	}
	return out
}
