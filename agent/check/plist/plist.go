package plist

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// maxDepth bounds nesting, so a hostile document cannot exhaust the stack.
const maxDepth = 64

// ErrBinary is returned for a binary plist (bplist00), which this package
// does not read.
var ErrBinary = errors.New("plist: binary property lists are not supported")

// Decode parses an XML property list and returns its top-level value.
func Decode(data []byte) (any, error) {
	if bytes.HasPrefix(data, []byte("bplist")) {
		return nil, ErrBinary
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("plist: no <plist> element")
			}
			return nil, fmt.Errorf("plist: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if se.Name.Local != "plist" {
			return nil, fmt.Errorf("plist: root element is <%s>, not <plist>", se.Name.Local)
		}
		v, end, err := decodeNext(d, 0)
		if err != nil {
			return nil, err
		}
		if end {
			return nil, errors.New("plist: empty <plist>")
		}
		return v, nil
	}
}

// decodeNext reads the next value element. end is true when the enclosing
// element closed instead.
func decodeNext(d *xml.Decoder, depth int) (v any, end bool, err error) {
	if depth > maxDepth {
		return nil, false, errors.New("plist: nested too deeply")
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, false, fmt.Errorf("plist: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil, true, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, false, errors.New("plist: text outside a value")
			}
		case xml.StartElement:
			v, err := decodeValue(d, t, depth)
			return v, false, err
		}
	}
}

func decodeValue(d *xml.Decoder, se xml.StartElement, depth int) (any, error) {
	switch se.Name.Local {
	case "dict":
		m := make(map[string]any)
		for {
			k, end, err := decodeNext(d, depth+1)
			if err != nil {
				return nil, err
			}
			if end {
				return m, nil
			}
			key, ok := k.(plistKey)
			if !ok {
				return nil, errors.New("plist: <dict> value without a <key>")
			}
			v, end, err := decodeNext(d, depth+1)
			if err != nil {
				return nil, err
			}
			if end {
				return nil, fmt.Errorf("plist: key %q has no value", string(key))
			}
			if _, isKey := v.(plistKey); isKey {
				return nil, fmt.Errorf("plist: key %q followed by another key", string(key))
			}
			m[string(key)] = v
		}
	case "array":
		a := []any{}
		for {
			v, end, err := decodeNext(d, depth+1)
			if err != nil {
				return nil, err
			}
			if end {
				return a, nil
			}
			if _, isKey := v.(plistKey); isKey {
				return nil, errors.New("plist: <key> inside an <array>")
			}
			a = append(a, v)
		}
	case "true", "false":
		if err := d.Skip(); err != nil {
			return nil, fmt.Errorf("plist: %w", err)
		}
		return se.Name.Local == "true", nil
	}
	text, err := elementText(d)
	if err != nil {
		return nil, err
	}
	switch se.Name.Local {
	case "key":
		return plistKey(text), nil
	case "string":
		return text, nil
	case "integer":
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("plist: bad <integer>: %w", err)
		}
		return n, nil
	case "real":
		f, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil {
			return nil, fmt.Errorf("plist: bad <real>: %w", err)
		}
		return f, nil
	case "date":
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(text))
		if err != nil {
			return nil, fmt.Errorf("plist: bad <date>: %w", err)
		}
		return t.UTC(), nil
	case "data":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
		if err != nil {
			return nil, fmt.Errorf("plist: bad <data>: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("plist: unknown element <%s>", se.Name.Local)
}

// plistKey marks a <key> so dicts can tell keys from string values.
type plistKey string

// elementText reads character data up to the end of the current element;
// nested elements are an error.
func elementText(d *xml.Decoder) (string, error) {
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			return "", fmt.Errorf("plist: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			b.Write(t)
		case xml.EndElement:
			return b.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("plist: unexpected <%s> inside a scalar", t.Name.Local)
		}
	}
}

// Dict returns v as a dict, if it is one.
func Dict(v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	return m, ok
}

// Array returns v as an array, if it is one.
func Array(v any) ([]any, bool) {
	a, ok := v.([]any)
	return a, ok
}

// String returns m[key] if it is a string.
func String(m map[string]any, key string) (string, bool) {
	s, ok := m[key].(string)
	return s, ok
}

// Bool returns m[key] if it is a boolean.
func Bool(m map[string]any, key string) (bool, bool) {
	b, ok := m[key].(bool)
	return b, ok
}

// Date returns m[key] if it is a date.
func Date(m map[string]any, key string) (time.Time, bool) {
	t, ok := m[key].(time.Time)
	return t, ok
}
