package server

import (
	"math"
	"testing"
	"time"
)

func TestVouchedTime(t *testing.T) {
	recv := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	start := recv.Add(-48 * time.Hour)
	hour := uint64(time.Hour / time.Millisecond)
	for _, tc := range []struct {
		name      string
		collected time.Time
		queued    uint64
		start     time.Time
		want      time.Time
		suspect   bool
	}{
		{"fresh", recv.Add(-time.Second), 0, start, recv.Add(-time.Second), false},
		{"queued an hour", recv.Add(-time.Hour), hour, start, recv.Add(-time.Hour), false},
		{"slow clock within allowance", recv.Add(-time.Minute), 0, start, recv.Add(-time.Minute), false},
		{"fast clock within allowance", recv.Add(time.Minute), 0, start, recv, false},
		{"older than it waited", recv.Add(-3 * time.Hour), hour, start, recv.Add(-time.Hour), true},
		{"in the future", recv.Add(time.Hour), 0, start, recv, true},
		{"before the epoch", start.Add(-time.Hour), 100 * hour, start, start, true},
		{"year 1600", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), 0, start, recv, true},
		{"year 9999", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), 0, start, recv, true},
		{"queued forever", recv.Add(-time.Hour), math.MaxUint64, start, recv.Add(-time.Hour), false},
		{"queued forever, year 1600", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxUint64, start, start, true},
		{"epoch started after receipt", recv, 0, recv.Add(time.Hour), recv, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, suspect := vouchedTime(tc.collected, recv, tc.queued, tc.start)
			if !got.Equal(tc.want) || suspect != tc.suspect {
				t.Errorf("vouchedTime = %v, %v; want %v, %v", got, suspect, tc.want, tc.suspect)
			}
		})
	}
}
