package feed

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"

	"github.com/wardhq/ward/internal/jsonpos"
)

// MaxSize bounds what Decode and DecodeSigned read. A feed of every
// supported line with years of releases is well under a megabyte.
const MaxSize = 8 << 20

// Decode reads one feed strictly: one JSON document in Format, with no
// field it does not know and nothing after it, at most MaxSize bytes.
// Its errors give the line and column of what is wrong. Decode does not
// Validate the feed.
func Decode(r io.Reader) (*Feed, error) {
	f := &Feed{}
	data, err := decodeStrict(r, MaxSize, "release feed", f)
	if err != nil {
		return nil, err
	}
	if err := checkFormat(data, "release feed", f.Format, Format); err != nil {
		return nil, err
	}
	return f, nil
}

// Encode writes f as indented JSON, one document, for people to read.
// What a signature covers is Canonical(f), not this.
func Encode(w io.Writer, f *Feed) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(normalise(f)); err != nil {
		return fmt.Errorf("write release feed: %w", err)
	}
	return nil
}

// Canonical is the one encoding of f a signature covers: the compact
// JSON encoding/json writes for Feed (fields in the order of the Go
// types, no space between tokens, no trailing newline), with the format
// set, times in UTC and absent lists written as [].
func Canonical(f *Feed) ([]byte, error) {
	b, err := json.Marshal(normalise(f))
	if err != nil {
		return nil, fmt.Errorf("encode release feed: %w", err)
	}
	return b, nil
}

// normalise is a copy of f as Canonical writes it.
func normalise(f *Feed) *Feed {
	c := *f
	c.Format = Format
	c.GeneratedAt = c.GeneratedAt.UTC()
	c.ExpiresAt = c.ExpiresAt.UTC()
	if c.Sources == nil {
		c.Sources = []Source{}
	}
	c.Lines = make([]Line, len(f.Lines))
	for i, l := range f.Lines {
		if l.Releases == nil {
			l.Releases = []Release{}
		}
		c.Lines[i] = l
	}
	return &c
}

// decodeStrict reads one JSON document of at most limit bytes from r
// into v, refusing unknown fields and trailing data. It returns the
// bytes read.
func decodeStrict(r io.Reader, limit int64, what string, v any) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", what, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("%s: %s", what, jsonpos.Describe(data, err, dec.InputOffset()))
	}
	if rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("%s: %s: data after the document", what, jsonpos.Position(data, int64(len(data)-len(rest))))
	}
	return data, nil
}

var formatKey = regexp.MustCompile(`"format"\s*:\s*`)

// checkFormat refuses a document whose format is not want, placing the
// error at the format's value.
func checkFormat(data []byte, what, got, want string) error {
	if got == want {
		return nil
	}
	at := int64(0)
	if i := formatKey.FindIndex(data); i != nil {
		at = int64(i[1])
	}
	return fmt.Errorf("%s: %s: format is %q, want %q", what, jsonpos.Position(data, at), got, want)
}
