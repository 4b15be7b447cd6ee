// Package jsonpos places encoding/json's errors in the document as
// line:column, for the strict decoders of evidence files and release
// feeds (package evidence, package feed).
package jsonpos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
)

var unknownField = regexp.MustCompile(`^json: unknown field "(.*)"$`)

// Describe places err, a json.Decoder's error on data, in data:
// encoding/json gives an offset for syntax and type errors; an unknown
// field is found by its name; anything else is placed at reached (the
// decoder's InputOffset).
func Describe(data []byte, err error, reached int64) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s: %v", Position(data, syn.Offset-1), err)
	case errors.As(err, &typ):
		what := typ.Field
		if what == "" {
			what = "value"
		}
		return fmt.Sprintf("%s: %s: a JSON %s where %s belongs", Position(data, typ.Offset), what, typ.Value, typ.Type)
	case errors.Is(err, io.EOF):
		return "empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%s: unexpected end of input", Position(data, int64(len(data))))
	}
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		key, _ := json.Marshal(m[1])
		at := reached
		if re, rerr := regexp.Compile(regexp.QuoteMeta(string(key)) + `\s*:`); rerr == nil {
			if i := re.FindIndex(data); i != nil {
				at = int64(i[0])
			}
		}
		return fmt.Sprintf("%s: unknown field %s", Position(data, at), key)
	}
	return fmt.Sprintf("%s: %v", Position(data, reached), err)
}

// Position is the 1-based line:column of byte offset off in data.
func Position(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return strconv.Itoa(line) + ":" + strconv.Itoa(col)
}
