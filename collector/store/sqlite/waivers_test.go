package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
)

func TestActiveWaivers(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ward.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, w := range []store.Waiver{
		{ID: "own", DeviceID: "d1", RuleID: "r2", ExpiresAt: t0.Add(time.Hour)},
		{ID: "group", Group: "field", RuleID: "r1", ExpiresAt: t0.Add(time.Hour)},
		{ID: "other-device", DeviceID: "d2", Group: "field", RuleID: "r1", ExpiresAt: t0.Add(time.Hour)},
		{ID: "other-group", Group: "staff", RuleID: "r1", ExpiresAt: t0.Add(time.Hour)},
		{ID: "expired", DeviceID: "d1", RuleID: "r1", ExpiresAt: t0},
		{ID: "future", DeviceID: "d1", RuleID: "r3", CreatedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour)},
		{ID: "revoked", DeviceID: "d1", RuleID: "r4", ExpiresAt: t0.Add(time.Hour)},
	} {
		w.Reason, w.CreatedBy = "because", "amina"
		if w.CreatedAt.IsZero() {
			w.CreatedAt = t0.Add(-time.Hour)
		}
		if err := s.CreateWaiver(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeWaiver(ctx, "revoked", t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	ws, err := s.ActiveWaivers(ctx, "d1", "field", t0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, w := range ws {
		ids = append(ids, w.ID)
		if !w.ActiveAt(t0) || !w.Covers("d1", "field", w.RuleID) {
			t.Errorf("%s: not active for d1 at t0", w.ID)
		}
	}
	if len(ids) != 2 || ids[0] != "group" || ids[1] != "own" {
		t.Errorf("ActiveWaivers = %v, want [group own]", ids)
	}
}
