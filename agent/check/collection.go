package check

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// OK is a complete collection.
func OK() *wardv1.Collection {
	return &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_OK}
}

// Partial is a collection where some facts are unknown, with the reason.
func Partial(format string, args ...any) *wardv1.Collection {
	return &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL, Reason: fmt.Sprintf(format, args...)}
}

// Failed is a collection that could not tell, with the reason.
func Failed(format string, args ...any) *wardv1.Collection {
	return &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_FAILED, Reason: fmt.Sprintf(format, args...)}
}

// Unsupported is a collection for a platform with nothing to read.
func Unsupported(format string, args ...any) *wardv1.Collection {
	return &wardv1.Collection{Status: wardv1.CollectionStatus_COLLECTION_STATUS_UNSUPPORTED, Reason: fmt.Sprintf(format, args...)}
}

// MaxFile is the default cap for reading small text files (os-release,
// sysfs attributes, logs' tails).
const MaxFile = 1 << 20

// RowInt reads an integer column from a WMI row, whatever numeric type the
// source produced (live rows hold Go integers, replayed rows json.Number).
func RowInt(row map[string]any, col string) (int64, bool) {
	switch v := row[col].(type) {
	case int:
		return int64(v), true
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		if v > math.MaxInt64 {
			return 0, false
		}
		return int64(v), true
	case float64:
		if v != math.Trunc(v) {
			return 0, false
		}
		return int64(v), true
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// RowString reads a string column from a WMI row.
func RowString(row map[string]any, col string) (string, bool) {
	v, ok := row[col].(string)
	return v, ok
}

// RowBool reads a boolean column from a WMI row.
func RowBool(row map[string]any, col string) (bool, bool) {
	v, ok := row[col].(bool)
	return v, ok
}
