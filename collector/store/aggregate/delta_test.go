package aggregate

import (
	"reflect"
	"testing"
)

// TestDeltaMergeIsTheSum: the changes of two writes merged are the
// changes of both added to one Delta, counter by counter and trend day
// by day; a change and its reverse cancel out.
func TestDeltaMergeIsTheSum(t *testing.T) {
	since := int64(5 * HourNanos)
	a := Snapshot{ID: "d1", Exists: true, Group: "g", Class: ClassCompliant, Seen: 10 * MinuteNanos, States: 3}
	b := Snapshot{ID: "d1", Exists: true, Group: "g", Class: ClassFailing, Seen: 70 * MinuteNanos, States: 3,
		StateAt: 2 * DayNanos, Failing: map[string]*int64{"fw": &since}}
	c := Snapshot{ID: "d2", Exists: true, Group: "h", Class: ClassUnknown, Seen: 3 * DayNanos, States: 1}

	one, two, both := NewDelta(), NewDelta(), NewDelta()
	one.Change(a, b, 1*DayNanos)
	two.Change(Snapshot{ID: "d2"}, c, 3*DayNanos)
	both.Change(a, b, 1*DayNanos)
	both.Change(Snapshot{ID: "d2"}, c, 3*DayNanos)
	one.Merge(two)
	if !reflect.DeepEqual(one, both) {
		t.Errorf("merged %+v\nwant %+v", one, both)
	}
	if got := both.Trend[1]; got != [3]int{-1, 1, 0} {
		t.Errorf("trend on day 1 = %v, want compliant -1, failing +1", got)
	}
	if got := both.Days(); !reflect.DeepEqual(got, []int64{1, 3}) {
		t.Errorf("Days = %v, want [1 3]", got)
	}
	if n := both.Failing[FailKey{"g", "fw", "d1", since}]; n != 1 {
		t.Errorf("failing row of d1 = %d, want 1", n)
	}

	back := NewDelta()
	back.Change(a, b, DayNanos)
	back.Change(b, a, DayNanos)
	for name, m := range map[string]int{"dev": nonZero(back.Dev), "seen": nonZero(back.Seen), "rule": nonZero(back.Rule), "hour": nonZero(back.Hour), "failing": nonZero(back.Failing)} {
		if m != 0 {
			t.Errorf("%s: a change and its reverse leave %d non-zero counters", name, m)
		}
	}
	if back.Empty() {
		t.Error("Empty: the keys are there (at zero), the writers skip them")
	}
	if !NewDelta().Empty() {
		t.Error("a new Delta is not empty")
	}
}

func nonZero[K comparable](m map[K]int) int {
	n := 0
	for _, v := range m {
		if v != 0 {
			n++
		}
	}
	return n
}
