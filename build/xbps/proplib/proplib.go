// Package proplib writes property lists the way xbps's bundled proplib externalizes them, byte for
// byte, and reads them as strictly as proplib internalizes them.
//
// xbps reads what the pipeline writes into an image (the package database, the files lists, the
// trusted keys), and its parser is not a general XML parser: it knows five named entities (&amp;
// &lt; &gt; &apos; &quot;) and nothing else, so a numeric reference such as Go's encoding/xml writes
// for an apostrophe (&#39;) makes the whole file unreadable to every xbps command in the guest.
// Marshal escapes only what proplib escapes (<, > and &), sorts dictionary keys by their bytes,
// indents with tabs and writes empty values as empty elements, as proplib does.
//
// Values are map[string]any (dict), []any or []string (array), string, bool, signed and unsigned
// integers (integer), and []byte (data). Unmarshal returns map[string]any, []any, string, bool, int64
// (uint64 above the int64 range or written in hex, as proplib reads them) and []byte.
package proplib

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

const header = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple Computer//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
`

// Marshal writes v as xbps writes a property list file.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(header)
	if err := writeValue(&b, v, 0); err != nil {
		return nil, err
	}
	b.WriteString("</plist>\n")
	return b.Bytes(), nil
}

func writeValue(b *bytes.Buffer, v any, depth int) error {
	switch v := v.(type) {
	case map[string]any:
		return writeDict(b, v, depth)
	case []any:
		return writeArray(b, v, depth)
	case []string:
		items := make([]any, len(v))
		for i, s := range v {
			items[i] = s
		}
		return writeArray(b, items, depth)
	case string:
		return writeText(b, "string", v, depth)
	case bool:
		writeEmpty(b, strconv.FormatBool(v), depth)
	case int:
		writeElement(b, "integer", strconv.FormatInt(int64(v), 10), depth)
	case int64:
		writeElement(b, "integer", strconv.FormatInt(v, 10), depth)
	case uint64:
		writeElement(b, "integer", strconv.FormatUint(v, 10), depth)
	case uint32:
		writeElement(b, "integer", strconv.FormatUint(uint64(v), 10), depth)
	case []byte:
		if len(v) == 0 {
			writeEmpty(b, "data", depth)
		} else {
			writeElement(b, "data", base64.StdEncoding.EncodeToString(v), depth)
		}
	default:
		return fmt.Errorf("proplib: a %T has no property list form", v)
	}
	return nil
}

func writeDict(b *bytes.Buffer, d map[string]any, depth int) error {
	if len(d) == 0 {
		writeEmpty(b, "dict", depth)
		return nil
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys) // proplib keeps a dictionary sorted by strcmp
	indent(b, depth)
	b.WriteString("<dict>\n")
	for _, k := range keys {
		if err := writeText(b, "key", k, depth+1); err != nil {
			return err
		}
		if err := writeValue(b, d[k], depth+1); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	indent(b, depth)
	b.WriteString("</dict>\n")
	return nil
}

func writeArray(b *bytes.Buffer, items []any, depth int) error {
	if len(items) == 0 {
		writeEmpty(b, "array", depth)
		return nil
	}
	indent(b, depth)
	b.WriteString("<array>\n")
	for _, it := range items {
		if err := writeValue(b, it, depth+1); err != nil {
			return err
		}
	}
	indent(b, depth)
	b.WriteString("</array>\n")
	return nil
}

// writeText writes a string or a key. proplib's strings are C strings: a NUL cannot be written.
func writeText(b *bytes.Buffer, tag, s string, depth int) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("proplib: %s %q holds a NUL byte, which a property list cannot carry", tag, s)
	}
	if s == "" && tag == "string" {
		writeEmpty(b, tag, depth)
		return nil
	}
	writeElement(b, tag, escaper.Replace(s), depth)
	return nil
}

// escaper escapes what proplib escapes, and nothing else: quotes and apostrophes stay as they are.
var escaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;")

func writeElement(b *bytes.Buffer, tag, text string, depth int) {
	indent(b, depth)
	fmt.Fprintf(b, "<%s>%s</%s>\n", tag, text, tag)
}

func writeEmpty(b *bytes.Buffer, tag string, depth int) {
	indent(b, depth)
	fmt.Fprintf(b, "<%s/>\n", tag)
}

func indent(b *bytes.Buffer, depth int) {
	for range depth {
		b.WriteByte('\t')
	}
}

// maxDepth bounds nesting: xbps's own files nest three deep.
const maxDepth = 64

// Unmarshal reads a property list as proplib does, and refuses what proplib refuses: entities
// other than the five named ones, attributes other than plist's version, unknown elements,
// unterminated elements. It is stricter where proplib is loose: duplicate keys, text after
// </plist>, integers in octal.
func Unmarshal(data []byte) (any, error) {
	p := &parser{s: string(data)}
	if err := p.prolog(); err != nil {
		return nil, p.fail(err)
	}
	t, err := p.tag()
	if err != nil {
		return nil, p.fail(err)
	}
	if t.end || t.name != "plist" || t.empty || (t.attr != "" && t.attr != "version") {
		return nil, p.fail(fmt.Errorf("want <plist>, got %s", t))
	}
	v, err := p.value(0)
	if err != nil {
		return nil, p.fail(err)
	}
	if err := p.endTag("plist"); err != nil {
		return nil, p.fail(err)
	}
	if rest := strings.TrimLeft(p.s[p.pos:], spaces); rest != "" {
		return nil, p.fail(errors.New("text after </plist>"))
	}
	return v, nil
}

const spaces = " \t\n\r"

type parser struct {
	s   string
	pos int
}

func (p *parser) fail(err error) error {
	line := 1 + strings.Count(p.s[:min(p.pos, len(p.s))], "\n")
	return fmt.Errorf("property list, line %d: %w", line, err)
}

// prolog skips the XML declaration, the doctype and comments before the first element.
func (p *parser) prolog() error {
	for {
		p.skipSpace()
		rest := p.s[p.pos:]
		switch {
		case strings.HasPrefix(rest, "<?xml "), strings.HasPrefix(rest, "<!DOCTYPE plist"):
			end := strings.IndexByte(rest, '>')
			if end < 0 {
				return errors.New("unterminated declaration")
			}
			p.pos += end + 1
		case strings.HasPrefix(rest, "<!--"):
			if err := p.comment(); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (p *parser) comment() error {
	end := strings.Index(p.s[p.pos+4:], "-->")
	if end < 0 {
		return errors.New("unterminated comment")
	}
	p.pos += 4 + end + 3
	return nil
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) && strings.IndexByte(spaces, p.s[p.pos]) >= 0 {
		p.pos++
	}
}

type tag struct {
	name       string
	end, empty bool
	attr       string // the one attribute's name, if any
}

func (t tag) String() string {
	switch {
	case t.end:
		return "</" + t.name + ">"
	case t.empty:
		return "<" + t.name + "/>"
	}
	return "<" + t.name + ">"
}

// tag reads the next tag after white space; comments may stand before a start tag.
func (p *parser) tag() (tag, error) { return p.nextTag(true) }

// nextTag reads the next tag; proplib skips comments where a start tag may come, not before an end
// tag.
func (p *parser) nextTag(comments bool) (tag, error) {
	for {
		p.skipSpace()
		if p.pos >= len(p.s) || p.s[p.pos] != '<' {
			return tag{}, errors.New("want a tag")
		}
		if !comments && strings.HasPrefix(p.s[p.pos:], "<!--") {
			return tag{}, errors.New("a comment where an end tag must come (proplib refuses it)")
		}
		if strings.HasPrefix(p.s[p.pos:], "<!--") {
			if err := p.comment(); err != nil {
				return tag{}, err
			}
			continue
		}
		break
	}
	p.pos++
	var t tag
	if p.pos < len(p.s) && p.s[p.pos] == '/' {
		t.end = true
		p.pos++
	}
	start := p.pos
	for p.pos < len(p.s) && strings.IndexByte(spaces+"/>", p.s[p.pos]) < 0 {
		p.pos++
	}
	t.name = p.s[start:p.pos]
	if p.pos >= len(p.s) || t.name == "" {
		return t, errors.New("unterminated tag")
	}
	if p.s[p.pos] != '/' && p.s[p.pos] != '>' {
		// One attribute: name="value".
		p.skipSpace()
		eq := strings.IndexByte(p.s[p.pos:], '=')
		if eq < 0 || t.end {
			return t, fmt.Errorf("bad attribute in <%s>", t.name)
		}
		t.attr = p.s[p.pos : p.pos+eq]
		p.pos += eq + 1
		if p.pos >= len(p.s) || p.s[p.pos] != '"' {
			return t, fmt.Errorf("bad attribute in <%s>", t.name)
		}
		close := strings.IndexByte(p.s[p.pos+1:], '"')
		if close < 0 {
			return t, fmt.Errorf("unterminated attribute in <%s>", t.name)
		}
		p.pos += 1 + close + 1
	}
	if p.pos < len(p.s) && p.s[p.pos] == '/' {
		if t.end {
			return t, fmt.Errorf("bad end tag </%s/>", t.name)
		}
		t.empty = true
		p.pos++
	}
	if p.pos >= len(p.s) || p.s[p.pos] != '>' {
		return t, fmt.Errorf("unterminated tag <%s", t.name)
	}
	p.pos++
	return t, nil
}

func (p *parser) endTag(name string) error {
	t, err := p.nextTag(false)
	if err != nil {
		return err
	}
	if !t.end || t.name != name {
		return fmt.Errorf("want </%s>, got %s", name, t)
	}
	return nil
}

// value reads the element that starts at the next tag.
func (p *parser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nested too deep")
	}
	t, err := p.tag()
	if err != nil {
		return nil, err
	}
	if t.end {
		return nil, fmt.Errorf("unexpected %s", t)
	}
	if t.attr != "" {
		return nil, fmt.Errorf("<%s> has an attribute", t.name)
	}
	switch t.name {
	case "dict":
		return p.dict(t, depth)
	case "array":
		return p.array(t, depth)
	case "string":
		return p.text(t)
	case "true", "false":
		if !t.empty {
			return nil, fmt.Errorf("want <%s/>", t.name)
		}
		return t.name == "true", nil
	case "integer":
		return p.integer(t)
	case "data":
		return p.data(t)
	}
	return nil, fmt.Errorf("unknown element <%s>", t.name)
}

func (p *parser) dict(t tag, depth int) (any, error) {
	d := map[string]any{}
	if t.empty {
		return d, nil
	}
	for {
		k, err := p.tag()
		if err != nil {
			return nil, err
		}
		if k.end && k.name == "dict" {
			return d, nil
		}
		if k.end || k.name != "key" || k.attr != "" {
			return nil, fmt.Errorf("want <key> or </dict>, got %s", k)
		}
		key, err := p.text(k)
		if err != nil {
			return nil, err
		}
		if _, dup := d[key]; dup {
			return nil, fmt.Errorf("key %q twice in one dictionary", key)
		}
		if d[key], err = p.value(depth + 1); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
}

func (p *parser) array(t tag, depth int) (any, error) {
	items := []any{}
	if t.empty {
		return items, nil
	}
	for {
		save := p.pos
		e, err := p.tag()
		if err != nil {
			return nil, err
		}
		if e.end && e.name == "array" {
			return items, nil
		}
		p.pos = save
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, v)
	}
}

// text reads the content of a <string> or <key> up to its end tag, decoding the five entities.
func (p *parser) text(t tag) (string, error) {
	if t.empty {
		return "", nil
	}
	end := strings.IndexByte(p.s[p.pos:], '<')
	if end < 0 {
		return "", fmt.Errorf("unterminated <%s>", t.name)
	}
	raw := p.s[p.pos : p.pos+end]
	var b strings.Builder
	for i := 0; i < len(raw); {
		if raw[i] != '&' {
			b.WriteByte(raw[i])
			i++
			continue
		}
		n, c := entity(raw[i:])
		if n == 0 {
			semi := strings.IndexByte(raw[i:], ';')
			if semi < 0 || semi > 10 {
				semi = min(len(raw)-i-1, 10)
			}
			return "", fmt.Errorf("<%s>: %q is not one of the five entities xbps reads (&amp; &lt; &gt; &apos; &quot;)", t.name, raw[i:i+semi+1])
		}
		b.WriteByte(c)
		i += n
	}
	p.pos += end
	return b.String(), p.endTag(t.name)
}

func entity(s string) (int, byte) {
	for _, e := range [...]struct {
		name string
		c    byte
	}{{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&apos;", '\''}, {"&quot;", '"'}} {
		if strings.HasPrefix(s, e.name) {
			return len(e.name), e.c
		}
	}
	return 0, 0
}

func (p *parser) integer(t tag) (any, error) {
	if t.empty {
		return nil, errors.New("empty <integer/>")
	}
	end := strings.IndexByte(p.s[p.pos:], '<')
	if end < 0 {
		return nil, errors.New("unterminated <integer>")
	}
	s := p.s[p.pos : p.pos+end]
	p.pos += end
	var v any
	switch {
	case strings.HasPrefix(s, "0x"):
		u, err := strconv.ParseUint(s[2:], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("<integer>%s: %w", s, err)
		}
		v = u
	case len(s) > 1 && s[0] == '0':
		return nil, fmt.Errorf("<integer>%s: a leading zero", s)
	default:
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			v = i
		} else if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			v = u
		} else {
			return nil, fmt.Errorf("<integer>%s: not a number", s)
		}
	}
	return v, p.endTag("integer")
}

func (p *parser) data(t tag) (any, error) {
	if t.empty {
		return []byte{}, nil
	}
	end := strings.IndexByte(p.s[p.pos:], '<')
	if end < 0 {
		return nil, errors.New("unterminated <data>")
	}
	d, err := base64.StdEncoding.Strict().DecodeString(p.s[p.pos : p.pos+end])
	if err != nil {
		return nil, fmt.Errorf("<data>: %w", err)
	}
	p.pos += end
	return d, p.endTag("data")
}
