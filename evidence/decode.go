package evidence

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
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
		return nil, fmt.Errorf("evidence file: %s", describeJSONError(data, err, dec.InputOffset()))
	}
	end := dec.InputOffset()
	if rest := bytes.TrimLeft(data[end:], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("evidence file: %s: data after the document", position(data, int64(len(data)-len(rest))))
	}
	if f.Format != Format {
		at := int64(0)
		if i := formatKey.FindIndex(data); i != nil {
			at = int64(i[1])
		}
		return nil, fmt.Errorf("evidence file: %s: format is %q, want %q", position(data, at), f.Format, Format)
	}
	return f, nil
}

var formatKey = regexp.MustCompile(`"format"\s*:\s*`)

var unknownField = regexp.MustCompile(`^json: unknown field "(.*)"$`)

// describeJSONError places err in data: encoding/json gives an offset
// for syntax and type errors; an unknown field is found by its name.
func describeJSONError(data []byte, err error, reached int64) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s: %v", position(data, syn.Offset-1), err)
	case errors.As(err, &typ):
		what := typ.Field
		if what == "" {
			what = "value"
		}
		return fmt.Sprintf("%s: %s: a JSON %s where %s belongs", position(data, typ.Offset), what, typ.Value, typ.Type)
	case errors.Is(err, io.EOF):
		return "empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%s: unexpected end of input", position(data, int64(len(data))))
	}
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		key, _ := json.Marshal(m[1])
		at := reached
		if re, rerr := regexp.Compile(regexp.QuoteMeta(string(key)) + `\s*:`); rerr == nil {
			if i := re.FindIndex(data); i != nil {
				at = int64(i[0])
			}
		}
		return fmt.Sprintf("%s: unknown field %s", position(data, at), key)
	}
	return fmt.Sprintf("%s: %v", position(data, reached), err)
}

// position is the 1-based line:column of byte offset off in data.
func position(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return strconv.Itoa(line) + ":" + strconv.Itoa(col)
}

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
