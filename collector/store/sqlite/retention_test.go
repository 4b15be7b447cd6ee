package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/sqlite"
	"github.com/wardhq/ward/collector/store/storetest"
)

func TestRetentionConformance(t *testing.T) {
	storetest.RunRetentionConformance(t, func() store.Dashboard {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ward.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// factsBytes is the size of every facts and results column in the file.
func factsBytes(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT coalesce(sum(length(facts) + length(results)), 0) FROM reports`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUnchangedReportStoredAsHeartbeat(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ward.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dev := enrolOne(t, s)
	facts := []byte("\x0a\x80\x40" + strings.Repeat("f", 8192))
	res := []store.RuleResult{{RuleID: "disk", Title: "Disk", Family: "disk", Severity: "high", Collector: store.Fail, Agent: store.Fail, Observed: "off", Expected: "on"}}
	t0 := time.Now().UTC().Add(-time.Hour)
	save := func(seq uint64) {
		t.Helper()
		r := store.Report{DeviceID: dev, Sequence: seq, ReceivedAt: t0.Add(time.Duration(seq) * time.Minute), CollectedAt: t0.Add(time.Duration(seq) * time.Minute),
			AgentVersion: "1", PolicyName: "baseline", PolicyVersion: 1, ContentHash: []byte{byte(seq)}, Facts: facts, Results: res}
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	save(1)
	one := factsBytes(t, path)
	save(2)
	two := factsBytes(t, path)
	t.Logf("facts and results stored: %d bytes after the first report, %d after an identical second", one, two)
	if two != one {
		t.Errorf("the identical second report added %d bytes", two-one)
	}
	got, err := s.Reports(ctx, dev, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d reports", len(got))
	}
	for _, r := range got {
		if string(r.Facts) != string(facts) || len(r.Results) != 1 || r.Results[0] != res[0] {
			t.Errorf("report %d read with %d bytes of facts and %v", r.Sequence, len(r.Facts), r.Results)
		}
	}
}

func enrolOne(t *testing.T, s store.Store) string {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	if err := s.CreateToken(ctx, store.Token{ID: "tok", Hash: []byte("h"), Group: "staff", Uses: 1, UsesLeft: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e, err := s.Enroll(ctx, store.EnrollParams{TokenHash: []byte("h"), NewID: "dev_1", Info: store.DeviceInfo{Hostname: "h"}, Now: now}, func(id string) (store.Issued, error) {
		return store.Issued{Serial: "s-" + id, NotAfter: now.Add(time.Hour)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return e.Device.ID
}
