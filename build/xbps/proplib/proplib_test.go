package proplib

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const oracle = "../../../../shared/fixtures/xbps/oracle-xbps-0.60.7/var-db-xbps"

// TestOracleRoundTrip reads every file the real xbps 0.60.7 wrote and writes it again: the bytes
// must be the same, so what we write is what xbps writes.
func TestOracleRoundTrip(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(oracle, "*.plist"))
	if err != nil || len(files) < 8 {
		t.Fatalf("oracle files: %v %v", files, err)
	}
	hidden, _ := filepath.Glob(filepath.Join(oracle, ".*-files.plist"))
	for _, f := range append(files, hidden...) {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		v, err := Unmarshal(want)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		got, err := Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: written differently:\n%s", filepath.Base(f), firstDifference(got, want))
		}
	}
}

func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d: got  %s\n         want %s", i+1, g[i], w[i])
		}
	}
	return "lengths differ"
}

// TestEscaping: what proplib escapes and what it leaves, for strings and keys that would trip an
// XML encoder.
func TestEscaping(t *testing.T) {
	cases := []struct{ in, written string }{
		{"Hyprland's idle daemon", "Hyprland's idle daemon"},
		{`say "hi"`, `say "hi"`},
		{"a & b", "a &amp; b"},
		{"<tag>", "&lt;tag&gt;"},
		{"]]>", "]]&gt;"},
		{"tab\there\nnewline", "tab\there\nnewline"},
		{"Grüße, 日本語", "Grüße, 日本語"},
		{"&#39;", "&amp;#39;"},
	}
	for _, c := range cases {
		data, err := Marshal(map[string]any{c.in: c.in})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "<key>"+c.written+"</key>") || !strings.Contains(string(data), "<string>"+c.written+"</string>") {
			t.Errorf("%q written as:\n%s", c.in, data)
		}
		if bytes.Contains(data, []byte("&#")) {
			t.Errorf("%q: a numeric character reference, which xbps cannot read:\n%s", c.in, data)
		}
		back, err := Unmarshal(data)
		if err != nil || !reflect.DeepEqual(back, map[string]any{c.in: c.in}) {
			t.Errorf("%q read back as %#v, %v", c.in, back, err)
		}
	}
	if _, err := Marshal(map[string]any{"k": "nul\x00"}); err == nil {
		t.Error("a NUL byte was written")
	}
}

func TestValues(t *testing.T) {
	v := map[string]any{
		"array": []any{"a", int64(-1), uint64(1) << 63, true, false, []byte("#!/bin/sh\n"), map[string]any{}, []any{}},
		"empty": "", "strings": []string{"x", "y"}, "int": 7, "u32": uint32(8),
	}
	data, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<string/>", "<dict/>", "<array/>", "<true/>", "<false/>", "<integer>-1</integer>",
		"<integer>9223372036854775808</integer>", "<data>IyEvYmluL3NoCg==</data>"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("lacks %s:\n%s", want, data)
		}
	}
	back, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"array": []any{"a", int64(-1), uint64(1) << 63, true, false, []byte("#!/bin/sh\n"), map[string]any{}, []any{}},
		"empty": "", "strings": []any{"x", "y"}, "int": int64(7), "u32": int64(8),
	}
	if !reflect.DeepEqual(back, want) {
		t.Errorf("read back %#v", back)
	}
	if _, err := Marshal(map[string]any{"f": 1.5}); err == nil {
		t.Error("a float was written")
	}
}

// TestStrict: what proplib refuses, we refuse, with the reason.
func TestStrict(t *testing.T) {
	wrap := func(body string) string { return header + body + "\n</plist>\n" }
	cases := []struct{ name, doc, want string }{
		{"numeric reference", wrap("<dict><key>d</key><string>it&#39;s</string></dict>"), "&#39;"},
		{"hex reference", wrap("<string>&#x27;</string>"), "&#x27;"},
		{"other named entity", wrap("<string>&nbsp;</string>"), "&nbsp;"},
		{"bare ampersand", wrap("<string>a & b</string>"), "five entities"},
		{"unknown element", wrap("<real>1.5</real>"), "unknown element"},
		{"attribute", wrap(`<string id="x">a</string>`), "attribute"},
		{"unterminated", header + "<dict><key>a</key><string>b", "unterminated"},
		{"mismatched end", wrap("<string>a</key>"), "want </string>"},
		{"duplicate key", wrap("<dict><key>a</key><true/><key>a</key><false/></dict>"), "twice"},
		{"text after plist", wrap("<true/>") + "<true/>", "after </plist>"},
		{"no plist", "<dict/>", "want <plist>"},
		{"true with content", wrap("<true>yes</true>"), "want <true/>"},
		{"octal integer", wrap("<integer>017</integer>"), "leading zero"},
		{"bad integer", wrap("<integer>12a</integer>"), "not a number"},
		{"bad base64", wrap("<data>!!</data>"), "<data>"},
		{"too deep", wrap(strings.Repeat("<array>", 100) + strings.Repeat("</array>", 100)), "too deep"},
		{"key outside dict", wrap("<array><key>a</key></array>"), "unknown element <key>"},
		{"comment before an end tag", wrap("<string>a<!-- c --></string>"), "a comment where an end tag must come"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Unmarshal([]byte(c.doc)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
	// What proplib allows: comments, white space between elements, <dict></dict>.
	ok := header + "<!-- a comment -->\n<dict>\n  <key>a</key>  <dict></dict>\n<!-- x --><key>b</key><array></array></dict></plist>"
	if v, err := Unmarshal([]byte(ok)); err != nil || !reflect.DeepEqual(v, map[string]any{"a": map[string]any{}, "b": []any{}}) {
		t.Errorf("%#v %v", v, err)
	}
}

// FuzzRoundTrip: any string as key and value, in a dictionary and an array, reads back as written.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"", "'", `"`, "&", "<", "]]>", "\t\n", "ü", "&#39;", "<!--", "</string>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := map[string]any{s: s, "list": []any{s, map[string]any{s: []byte(s)}}}
		data, err := Marshal(v)
		if strings.IndexByte(s, 0) >= 0 {
			if err == nil {
				t.Fatal("a NUL byte was written")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unmarshal(data)
		if err != nil {
			t.Fatalf("%q: %v\n%s", s, err, data)
		}
		want := map[string]any{s: s, "list": []any{s, map[string]any{s: []byte(s)}}}
		if s == "" {
			want[""] = ""
		}
		if !reflect.DeepEqual(back, want) {
			t.Fatalf("%q read back as %#v", s, back)
		}
	})
}

// FuzzUnmarshal: hostile bytes never crash the reader, and what it accepts writes back to a
// document that reads the same.
func FuzzUnmarshal(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(oracle, "*.plist"))
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil && len(data) < 4096 {
			f.Add(data)
		}
	}
	f.Add([]byte(header + "<dict><key>a</key><string>x&apos;y</string></dict></plist>"))
	f.Add([]byte(header + "<array><integer>0x10</integer><data>AA==</data><true/></array></plist>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Unmarshal(data)
		if err != nil {
			return
		}
		out, err := Marshal(v)
		if err != nil {
			if bytes.IndexByte(data, 0) >= 0 {
				return // a NUL read from the input cannot be written back
			}
			t.Fatalf("read %#v but cannot write it: %v", v, err)
		}
		again, err := Unmarshal(out)
		if err != nil || !reflect.DeepEqual(numbersAsText(again), numbersAsText(v)) {
			t.Fatalf("written %q reads as %#v, %v; want %#v", out, again, err, v)
		}
	})
}

// numbersAsText replaces integers by their decimal text: proplib writes signed and unsigned alike,
// so an unsigned number written in hex reads back signed.
func numbersAsText(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = numbersAsText(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = numbersAsText(e)
		}
		return out
	case int64, uint64:
		return fmt.Sprint(v)
	}
	return v
}
