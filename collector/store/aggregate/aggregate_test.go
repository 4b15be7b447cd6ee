package aggregate

import (
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

func TestFloorDivRoundsDownBefore1970(t *testing.T) {
	for _, c := range []struct{ a, b, want int64 }{
		{0, HourNanos, 0}, {HourNanos - 1, HourNanos, 0}, {HourNanos, HourNanos, 1},
		{-1, HourNanos, -1}, {-HourNanos, HourNanos, -1}, {-HourNanos - 1, HourNanos, -2},
	} {
		if got := FloorDiv(c.a, c.b); got != c.want {
			t.Errorf("FloorDiv(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if got := BucketStart(math.MinInt64/MinuteNanos-1, MinuteNanos); got != math.MinInt64 {
		t.Errorf("BucketStart below the range = %d, want saturated", got)
	}
}

func TestClassOfNeverCompliantWithoutAPass(t *testing.T) {
	for _, c := range []struct {
		revoked             bool
		pass, fail, unknown int
		want                string
	}{
		{true, 5, 0, 0, ClassRevoked}, {false, 5, 1, 1, ClassFailing}, {false, 5, 0, 1, ClassUnknown},
		{false, 0, 0, 0, ClassUnknown}, {false, 3, 0, 0, ClassCompliant},
	} {
		if got := ClassOf(c.revoked, c.pass, c.fail, c.unknown); got != c.want {
			t.Errorf("ClassOf(%v, %d, %d, %d) = %s, want %s", c.revoked, c.pass, c.fail, c.unknown, got, c.want)
		}
	}
}

func TestRangesOfACut(t *testing.T) {
	cut := time.Date(2026, 12, 1, 10, 37, 20, 0, time.UTC).UnixNano()
	r := RangesOf(cut)
	hour := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC).UnixNano() / HourNanos
	minute := time.Date(2026, 12, 1, 10, 37, 0, 0, time.UTC).UnixNano() / MinuteNanos
	if r.Cut != cut || r.Hour != hour || r.Minute != minute || r.MinuteEnd != (hour+1)*60 || r.ExactEnd != (minute+1)*MinuteNanos {
		t.Errorf("RangesOf = %+v; want hour %d, minute %d", r, hour, minute)
	}
}

func TestFleetCountsStaleIsTheRest(t *testing.T) {
	c := FleetCounts(map[string]int{ClassCompliant: 5, ClassFailing: 3, ClassUnknown: 2, ClassRevoked: 4},
		map[string]int{ClassCompliant: 4, ClassFailing: 1, ClassUnknown: 2})
	want := store.FleetCounts{Devices: 10, Compliant: 4, Failing: 1, Unknown: 2, Stale: 3, Revoked: 4}
	if c != want {
		t.Errorf("FleetCounts = %+v, want %+v", c, want)
	}
}

func TestCursorRoundTripAndRefusals(t *testing.T) {
	cols := []SortCol{
		{Expr: "d.fail_n", Num: true, Val: func(d store.Device) string { return strconv.Itoa(d.Fail) }},
		{Expr: "d.id", Val: func(d store.Device) string { return d.ID }},
	}
	cur := EncodeCursor("-fail", cols, store.Device{ID: "dev_7", Fail: 3})
	vals, err := DecodeCursor(cur, "-fail", cols)
	if err != nil || len(vals) != 2 || vals[0] != int64(3) || vals[1] != "dev_7" {
		t.Fatalf("DecodeCursor = %v, %v; want [3 dev_7]", vals, err)
	}
	for name, c := range map[string]string{"other sort": EncodeCursor("hostname", cols, store.Device{}), "garbage": "%%%", "empty": ""} {
		if _, err := DecodeCursor(c, "-fail", cols); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("%s: %v, want ErrBadCursor", name, err)
		}
	}
	bad := EncodeCursor("-fail", []SortCol{{Val: func(store.Device) string { return "x" }}, cols[1]}, store.Device{})
	if _, err := DecodeCursor(bad, "-fail", cols); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("non-numeric value for a numeric column: %v, want ErrBadCursor", err)
	}
}
