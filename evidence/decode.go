package evidence

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"

	"github.com/wardhq/ward/internal/jsonpos"
)

// MaxFileSize bounds what Decode reads: an evidence file is held in memory
// whole (a fleet-wide export of a year of hourly reports is well under it;
// split larger ones by period).
const MaxFileSize = 1 << 30

// Decode reads one evidence file strictly: one JSON document in the
// format this package names, with no field it does not know and nothing
// after it, at most MaxFileSize bytes. Its errors give the line and
// column of what is wrong.
func Decode(r io.Reader) (*File, error) {
	return decode(r, MaxFileSize)
}

func decode(r io.Reader, limit int64) (*File, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read evidence file: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("evidence file: larger than %d bytes", limit)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	f := &File{}
	if err := dec.Decode(f); err != nil {
		return nil, fmt.Errorf("evidence file: %s", jsonpos.Describe(data, err, dec.InputOffset()))
	}
	end := dec.InputOffset()
	if rest := bytes.TrimLeft(data[end:], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("evidence file: %s: data after the document", jsonpos.Position(data, int64(len(data)-len(rest))))
	}
	if f.Format != Format {
		at := int64(0)
		if i := formatKey.FindIndex(data); i != nil {
			at = int64(i[1])
		}
		return nil, fmt.Errorf("evidence file: %s: format is %q, want %q", jsonpos.Position(data, at), f.Format, Format)
	}
	return f, nil
}

var formatKey = regexp.MustCompile(`"format"\s*:\s*`)

// Encode writes f as an evidence file (indented JSON, one document).
func Encode(w io.Writer, f *File) error {
	if f.Format == "" {
		f.Format = Format
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("write evidence file: %w", err)
	}
	return nil
}
