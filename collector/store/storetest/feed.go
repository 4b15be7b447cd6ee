package storetest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// RunFeedConformance runs the suite for release feeds (docs/feed.md,
// "Importing"): store.FeedStore, store.FeedHead and store.FeedFiles
// (rollback refused, including an equal serial, and nothing stored of
// a refused import), and each report's FeedSerial kept.
func RunFeedConformance(t *testing.T, newStore func() store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store, feedStore)
	}{
		{"Empty", testFeedsEmpty},
		{"AddAndRollback", testFeedsAdd},
		{"SourceFiles", testFeedFiles},
		{"ConcurrentImports", testFeedsConcurrent},
		{"ReportFeedSerial", testReportFeedSerial},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			t.Cleanup(func() { s.Close() })
			fs, ok := s.(feedStore)
			if !ok {
				t.Fatalf("%T does not implement store.FeedStore, store.FeedHead and store.FeedFiles", s)
			}
			tc.fn(t, s, fs)
		})
	}
}

type feedStore interface {
	store.FeedStore
	store.FeedHead
	store.FeedFiles
}

func mkFeed(serial uint64) store.Feed {
	gen := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(serial%1000) * time.Minute)
	return store.Feed{
		Serial: serial, GeneratedAt: gen, ExpiresAt: gen.AddDate(0, 0, 180), ImportedAt: gen.Add(time.Hour + 123456789),
		Signed:  []byte(`{"format":"ward-signed-release-feed/1","serial":` + string(rune('0'+serial%10)) + `}`),
		Sources: []byte(`[{"name":"sofa","sha256":"ab"}]`),
	}
}

func sameFeed(t *testing.T, what string, got, want store.Feed, withSigned bool) {
	t.Helper()
	if got.Serial != want.Serial || !got.GeneratedAt.Equal(want.GeneratedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || !got.ImportedAt.Equal(want.ImportedAt) ||
		!bytes.Equal(got.Sources, want.Sources) {
		t.Errorf("%s = %+v, want %+v", what, got, want)
	}
	if withSigned && !bytes.Equal(got.Signed, want.Signed) {
		t.Errorf("%s: Signed = %q, want %q", what, got.Signed, want.Signed)
	}
	if !withSigned && got.Signed != nil {
		t.Errorf("%s: Signed = %q, want none (Feeds lists without it)", what, got.Signed)
	}
}

func testFeedsEmpty(t *testing.T, _ store.Store, fs feedStore) {
	ctx := context.Background()
	if _, err := fs.CurrentFeed(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CurrentFeed on an empty store = %v, want ErrNotFound", err)
	}
	if _, err := fs.FeedBySerial(ctx, 202612011200); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FeedBySerial on an empty store = %v, want ErrNotFound", err)
	}
	if n, err := fs.CurrentFeedSerial(ctx); err != nil || n != 0 {
		t.Errorf("CurrentFeedSerial on an empty store = %d, %v; want 0, nil", n, err)
	}
	if l, err := fs.Feeds(ctx); err != nil || len(l) != 0 {
		t.Errorf("Feeds on an empty store = %v, %v", l, err)
	}
	if l, err := fs.FeedFiles(ctx, 1); err != nil || len(l) != 0 {
		t.Errorf("FeedFiles on an empty store = %v, %v", l, err)
	}
}

func testFeedsAdd(t *testing.T, _ store.Store, fs feedStore) {
	ctx := context.Background()
	a, b := mkFeed(202612011200), mkFeed(202612151200)
	if err := fs.AddFeed(ctx, a); err != nil {
		t.Fatalf("AddFeed: %v", err)
	}
	cur, err := fs.CurrentFeed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sameFeed(t, "CurrentFeed", cur, a, true)
	for _, serial := range []uint64{a.Serial, a.Serial - 1, 1} {
		f := mkFeed(serial)
		if err := fs.AddFeed(ctx, f); !errors.Is(err, store.ErrFeedRollback) {
			t.Errorf("AddFeed(serial %d) after %d = %v, want ErrFeedRollback", serial, a.Serial, err)
		}
	}
	for _, serial := range []uint64{0, 1 << 63} {
		if err := fs.AddFeed(ctx, mkFeed(serial)); err == nil || errors.Is(err, store.ErrFeedRollback) {
			t.Errorf("AddFeed(serial %d) = %v, want an out-of-range error", serial, err)
		}
	}
	if err := fs.AddFeed(ctx, b); err != nil {
		t.Fatalf("AddFeed(newer): %v", err)
	}
	if cur, err = fs.CurrentFeed(ctx); err != nil {
		t.Fatal(err)
	}
	sameFeed(t, "CurrentFeed after the newer one", cur, b, true)
	if n, err := fs.CurrentFeedSerial(ctx); err != nil || n != b.Serial {
		t.Errorf("CurrentFeedSerial = %d, %v; want %d", n, err, b.Serial)
	}
	old, err := fs.FeedBySerial(ctx, a.Serial)
	if err != nil {
		t.Fatal(err)
	}
	sameFeed(t, "FeedBySerial(old)", old, a, true)
	if _, err := fs.FeedBySerial(ctx, a.Serial-1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FeedBySerial(refused serial) = %v, want ErrNotFound (a refused import stores nothing)", err)
	}
	l, err := fs.Feeds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != 2 {
		t.Fatalf("Feeds = %d, want 2", len(l))
	}
	sameFeed(t, "Feeds[0]", l[0], b, false)
	sameFeed(t, "Feeds[1]", l[1], a, false)
}

func testFeedFiles(t *testing.T, _ store.Store, fs feedStore) {
	ctx := context.Background()
	a := mkFeed(202612011200)
	files := []store.FeedSourceFile{
		{Name: "sofa.json", SHA256: hash("sofa"), Data: []byte(`{"OSVersions":[]}`)},
		{Name: "cvrf-2026-Nov.json", SHA256: hash("cvrf"), Data: []byte(`{"DocumentTitle":{}}`)},
	}
	if err := fs.AddFeedWithFiles(ctx, a, files); err != nil {
		t.Fatalf("AddFeedWithFiles: %v", err)
	}
	// Refused: its files are not kept either.
	if err := fs.AddFeedWithFiles(ctx, a, []store.FeedSourceFile{{Name: "other.json", SHA256: hash("other"), Data: []byte("x")}}); !errors.Is(err, store.ErrFeedRollback) {
		t.Errorf("AddFeedWithFiles(same serial) = %v, want ErrFeedRollback", err)
	}
	got, err := fs.FeedFiles(ctx, a.Serial)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "cvrf-2026-Nov.json" || got[1].Name != "sofa.json" ||
		!bytes.Equal(got[1].SHA256, hash("sofa")) || string(got[1].Data) != `{"OSVersions":[]}` || string(got[0].Data) != `{"DocumentTitle":{}}` {
		t.Errorf("FeedFiles = %+v", got)
	}
	// Two files with one SHA-256 under one feed: refused, nothing kept.
	b := mkFeed(202612151200)
	dup := []store.FeedSourceFile{{Name: "a", SHA256: hash("same"), Data: []byte("1")}, {Name: "b", SHA256: hash("same"), Data: []byte("1")}}
	if err := fs.AddFeedWithFiles(ctx, b, dup); err == nil {
		t.Errorf("AddFeedWithFiles(two files, one SHA-256) = nil, want an error")
	}
	if _, err := fs.FeedBySerial(ctx, b.Serial); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FeedBySerial after a failed AddFeedWithFiles = %v, want ErrNotFound", err)
	}
}

func testFeedsConcurrent(t *testing.T, _ store.Store, fs feedStore) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = fs.AddFeed(ctx, mkFeed(202612011200)) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrFeedRollback):
			t.Errorf("concurrent AddFeed: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent imports of one serial were stored, want 1", ok, n)
	}
}

func testReportFeedSerial(t *testing.T, s store.Store, _ feedStore) {
	ctx := context.Background()
	mkToken(t, s, "tok_a", "secret", "staff", 1, time.Hour)
	mustEnroll(t, s, "secret", "dev_1", "")
	r1 := report("dev_1", 1, t0.Add(time.Hour), store.Pass)
	r1.FeedSerial = 202612011200
	// The same facts and results (a heartbeat where the backend keeps
	// those once) under another feed: its own serial is kept.
	r2 := report("dev_1", 2, t0.Add(2*time.Hour), store.Pass)
	r2.FeedSerial = 202612151200
	r3 := report("dev_1", 3, t0.Add(3*time.Hour), store.Fail)
	for _, r := range []store.Report{r1, r2, r3} {
		if _, err := s.SaveReport(ctx, r); err != nil {
			t.Fatalf("SaveReport(%d): %v", r.Sequence, err)
		}
	}
	want := map[uint64]uint64{1: 202612011200, 2: 202612151200, 3: 0}
	rs, err := s.Reports(ctx, "dev_1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 {
		t.Fatalf("Reports = %d, want 3", len(rs))
	}
	for _, r := range rs {
		if r.FeedSerial != want[r.Sequence] {
			t.Errorf("Reports: report %d FeedSerial = %d, want %d", r.Sequence, r.FeedSerial, want[r.Sequence])
		}
	}
	newest, err := s.Reports(ctx, "dev_1", 1)
	if err != nil || len(newest) != 1 || newest[0].FeedSerial != 0 {
		t.Errorf("Reports(limit 1) = %+v, %v; want report 3 with FeedSerial 0", newest, err)
	}
	es, ok := s.(store.EvidenceStore)
	if !ok {
		return
	}
	ers, err := es.EvidenceReports(ctx, "dev_1", t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(ers) != 3 {
		t.Fatalf("EvidenceReports = %d, want 3", len(ers))
	}
	for _, r := range ers {
		if r.FeedSerial != want[r.Sequence] {
			t.Errorf("EvidenceReports: report %d FeedSerial = %d, want %d", r.Sequence, r.FeedSerial, want[r.Sequence])
		}
	}
}
