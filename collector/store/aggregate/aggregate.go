// Package aggregate is what the SQLite and PostgreSQL stores share of the
// dashboard's aggregates (docs/storage.md): bucket widths and arithmetic,
// device classes, a device's snapshot and the change of every counter a
// write makes (Delta), the bounds a stale cut reads, the fleet counts they
// add up to, and the device list's keyset cursors. The SQL stays in each
// backend; the meaning lives here once.
package aggregate

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"

	"github.com/wardhq/ward/collector/store"
)

// Bucket widths and the day, in nanoseconds.
const (
	MinuteNanos = int64(60e9)
	HourNanos   = 60 * MinuteNanos
	DayNanos    = 24 * HourNanos
)

// BucketWidths are the widths agg_seen and agg_rule_seen keep: hours to
// sum whole, minutes for the hour the stale cut falls in.
var BucketWidths = [...]int64{MinuteNanos, HourNanos}

// FloorDiv is a / b rounded down (b > 0), as the migrations' SQL does.
func FloorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// BucketStart is the first nanosecond of bucket b of width w, saturated.
func BucketStart(b, w int64) int64 {
	if b <= math.MinInt64/w {
		return math.MinInt64
	}
	return b * w
}

// Device classes: the status a device has when it is not stale.
const (
	ClassCompliant = "compliant"
	ClassFailing   = "failing"
	ClassUnknown   = "unknown"
	ClassRevoked   = "revoked"
)

// ClassOf is a device's class from its row (the backends' classExpr in SQL).
func ClassOf(revoked bool, pass, fail, unknown int) string {
	switch {
	case revoked:
		return ClassRevoked
	case fail > 0:
		return ClassFailing
	case unknown > 0 || pass == 0:
		return ClassUnknown
	}
	return ClassCompliant
}

// CutRanges are the bucket bounds of a stale cut: hour buckets after
// Hour, minute buckets in (Minute, MinuteEnd), and devices seen in
// [Cut, ExactEnd), counted one by one.
type CutRanges struct {
	Cut, Hour, Minute, MinuteEnd, ExactEnd int64
}

// RangesOf is the CutRanges of the stale cut cut (nanoseconds).
func RangesOf(cut int64) CutRanges {
	r := CutRanges{Cut: cut, Hour: FloorDiv(cut, HourNanos), Minute: FloorDiv(cut, MinuteNanos)}
	r.MinuteEnd = (r.Hour + 1) * (HourNanos / MinuteNanos)
	r.ExactEnd = math.MaxInt64
	if r.Minute < math.MaxInt64/MinuteNanos {
		r.ExactEnd = (r.Minute + 1) * MinuteNanos
	}
	return r
}

// FleetCounts adds up the totals per class (revoked included) and the
// fresh devices per class (seen at or after the stale cut) to the
// fleet's counts: stale is every non-revoked device that is not fresh.
func FleetCounts(total, fresh map[string]int) store.FleetCounts {
	c := store.FleetCounts{
		Compliant: fresh[ClassCompliant], Failing: fresh[ClassFailing], Unknown: fresh[ClassUnknown],
		Revoked: total[ClassRevoked],
		Devices: total[ClassCompliant] + total[ClassFailing] + total[ClassUnknown],
	}
	c.Stale = c.Devices - c.Compliant - c.Failing - c.Unknown
	return c
}

// SortCol is one column of a device list's order: its SQL expression,
// direction, whether it is numeric, and the cursor's value of a device.
type SortCol struct {
	Expr string
	Desc bool
	Num  bool
	Val  func(store.Device) string
}

// Cursors are base64url of a JSON array: the sort, then the sort
// columns' values of the page's last device.

// EncodeCursor is the cursor after d in the order cols of sortKey.
func EncodeCursor(sortKey string, cols []SortCol, d store.Device) string {
	vals := []string{sortKey}
	for _, c := range cols {
		vals = append(vals, c.Val(d))
	}
	b, _ := json.Marshal(vals)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor returns a cursor's column values (int64 for numeric
// columns), or store.ErrBadCursor when it is not one of sortKey's.
func DecodeCursor(cursor, sortKey string, cols []SortCol) ([]any, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	var vals []string
	if err == nil {
		err = json.Unmarshal(b, &vals)
	}
	if err != nil || len(vals) != len(cols)+1 || vals[0] != sortKey {
		return nil, store.ErrBadCursor
	}
	out := make([]any, len(cols))
	for i, c := range cols {
		out[i] = vals[i+1]
		if c.Num {
			n, err := strconv.ParseInt(vals[i+1], 10, 64)
			if err != nil {
				return nil, store.ErrBadCursor
			}
			out[i] = n
		}
	}
	return out, nil
}
