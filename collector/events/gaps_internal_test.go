package events

import (
	"testing"
	"time"
)

// TestGapsWaitThenPass: a reader stops before a missing id (a commit
// still on its way) and passes it once it has been missing for the wait.
func TestGapsWaitThenPass(t *testing.T) {
	g := gaps{wait: 10 * time.Second}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if n := g.take(5, []int64{6, 7, 9, 10}, t0); n != 2 {
		t.Fatalf("take at a new gap = %d, want 2 (up to 8, missing)", n)
	}
	if n := g.take(7, []int64{9, 10}, t0.Add(5*time.Second)); n != 0 {
		t.Fatalf("take within the wait = %d, want 0", n)
	}
	if n := g.take(7, []int64{8, 9, 10}, t0.Add(6*time.Second)); n != 3 {
		t.Fatalf("take once 8 came = %d, want 3", n)
	}
	if n := g.take(10, []int64{12}, t0.Add(7*time.Second)); n != 0 {
		t.Fatalf("take at another gap = %d, want 0", n)
	}
	if n := g.take(10, []int64{12, 13}, t0.Add(17*time.Second)); n != 2 {
		t.Fatalf("take after the wait = %d, want 2 (11 passed)", n)
	}
	if len(g.seen) != 0 {
		t.Errorf("gaps left behind: %v", g.seen)
	}
}
