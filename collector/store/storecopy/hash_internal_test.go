package storecopy

import (
	"testing"
)

func hashOf(t *testing.T, rows ...[]any) string {
	t.Helper()
	p := plan{name: "t", cols: []column{{name: "a"}, {name: "b"}}}
	var s tableSum
	for _, r := range rows {
		h, err := rowHash(p, r)
		if err != nil {
			t.Fatal(err)
		}
		s.add(h)
	}
	return s.hex()
}

// TestTableHash: the table hash ignores row order but sees every value,
// its type, a duplicated row and the boundary between columns.
func TestTableHash(t *testing.T) {
	r1, r2 := []any{int64(1), "x"}, []any{int64(2), []byte("y")}
	base := hashOf(t, r1, r2)
	if got := hashOf(t, r2, r1); got != base {
		t.Errorf("order changed the hash: %s vs %s", got, base)
	}
	for name, rows := range map[string][][]any{
		"one row less":          {r1},
		"a row twice":           {r1, r2, r2},
		"a pair twice":          {r1, r1, r2, r2},
		"int 1 as text":         {{"1", "x"}, r2},
		"text as bytes":         {{int64(1), []byte("x")}, r2},
		"NULL for empty":        {{int64(1), nil}, r2},
		"empty for NULL":        {{int64(1), ""}, r2},
		"value changed":         {{int64(1), "X"}, r2},
		"column boundary moved": {{int64(1), "x"}, {int64(2), []byte("y")}, {"ab", "c"}},
	} {
		if got := hashOf(t, rows...); got == base {
			t.Errorf("%s: same hash as the original table", name)
		}
	}
	if hashOf(t, []any{"ab", "c"}) == hashOf(t, []any{"a", "bc"}) {
		t.Error("moving a byte between columns keeps the hash")
	}
	if hashOf(t) != "0000000000000000000000000000000000000000000000000000000000000000" {
		t.Error("an empty table does not hash to zero")
	}
}

// TestConvert: values convert to the target column's type exactly or not
// at all.
func TestConvert(t *testing.T) {
	for _, tc := range []struct {
		v    any
		typ  string
		want any
		err  bool
	}{
		{int64(7), "bigint", int64(7), false},
		{"7", "bigint", nil, true},
		{[]byte("abc"), "text", "abc", false},
		{"ok", "text", "ok", false},
		{"a\x00b", "text", nil, true},
		{string([]byte{0xff}), "text", nil, true},
		{"raw", "bytea", []byte("raw"), false},
		{int64(1), "bytea", nil, true},
		{int64(1), "boolean", true, false},
		{int64(2), "boolean", nil, true},
		{nil, "text", nil, false},
		{int64(1), "jsonb", nil, true},
	} {
		got, err := convert(tc.v, tc.typ)
		if (err != nil) != tc.err {
			t.Errorf("convert(%#v, %s): err %v", tc.v, tc.typ, err)
			continue
		}
		if !tc.err {
			if b, ok := tc.want.([]byte); ok {
				if string(got.([]byte)) != string(b) {
					t.Errorf("convert(%#v, %s) = %#v", tc.v, tc.typ, got)
				}
			} else if got != tc.want {
				t.Errorf("convert(%#v, %s) = %#v, want %#v", tc.v, tc.typ, got, tc.want)
			}
		}
	}
}
