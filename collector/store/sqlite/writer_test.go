package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

func openTest(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := OpenWith(context.Background(), filepath.Join(t.TempDir(), "ward.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// enrolN enrols devices dev_0 … dev_{n-1}.
func enrolN(t testing.TB, s *Store, n int) {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	hash := []byte("test-token-hash-0123456789abcdef")
	if err := s.CreateToken(ctx, store.Token{ID: "tok", Hash: hash, Group: "staff", Uses: n, UsesLeft: n, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		_, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash, Now: now, NewID: fmt.Sprintf("dev_%d", i), Info: store.DeviceInfo{Hostname: fmt.Sprint("h", i)}},
			func(id string) (store.Issued, error) {
				return store.Issued{Serial: "s-" + id, NotAfter: now.Add(24 * time.Hour)}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func testReport(dev string, seq uint64, content string, v store.Verdict) store.Report {
	now := time.Now()
	return store.Report{DeviceID: dev, Sequence: seq, ReceivedAt: now, CollectedAt: now, ContentHash: []byte(content),
		AgentVersion: "1", PolicyName: "p", PolicyVersion: 1, Facts: []byte(content),
		Results: []store.RuleResult{{RuleID: "r", Collector: v}}}
}

// blockWriter makes the writer busy until the returned func is called,
// so that what is saved meanwhile queues for one batch.
func blockWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	ch, started := make(chan struct{}), make(chan struct{})
	go s.tx(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
		close(started)
		<-ch
		return nil
	})
	<-started
	return func() { close(ch) }
}

func waitQueued(s *Store, n int) {
	for s.writer.Queued() < n {
		runtime.Gosched()
	}
}

// TestOneBatchOneConflict queues, behind a busy writer, good reports of
// eight devices with a conflicting and an unknown one among them, so
// they share one transaction: the bad ones fail alone, the good ones are
// stored.
func TestOneBatchOneConflict(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	enrolN(t, s, 8)
	if _, err := s.SaveReport(ctx, testReport("dev_0", 1, "a", store.Pass)); err != nil {
		t.Fatal(err)
	}
	release := blockWriter(t, s)
	type result struct {
		stored bool
		err    error
	}
	res := make([]result, 10)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			stored, err := s.SaveReport(ctx, testReport(fmt.Sprintf("dev_%d", i), 2, "b", store.Fail))
			res[i] = result{stored, err}
		})
	}
	wg.Go(func() {
		stored, err := s.SaveReport(ctx, testReport("dev_0", 1, "not a", store.Fail))
		res[8] = result{stored, err}
	})
	wg.Go(func() {
		stored, err := s.SaveReport(ctx, testReport("dev_nope", 1, "x", store.Fail))
		res[9] = result{stored, err}
	})
	waitQueued(s, 10)
	release()
	wg.Wait()
	for i := range 8 {
		if !res[i].stored || res[i].err != nil {
			t.Errorf("dev_%d: stored=%v err=%v", i, res[i].stored, res[i].err)
		}
		d, _ := s.Device(ctx, fmt.Sprintf("dev_%d", i))
		if d.LastSequence != 2 || d.Fail != 1 {
			t.Errorf("dev_%d after the batch: %+v", i, d)
		}
	}
	if !errors.Is(res[8].err, store.ErrReportConflict) {
		t.Errorf("conflicting report: %v", res[8].err)
	}
	if !errors.Is(res[9].err, store.ErrNotFound) {
		t.Errorf("unknown device: %v", res[9].err)
	}
	rs, _ := s.Reports(ctx, "dev_0", 0)
	if len(rs) != 2 || string(rs[1].ContentHash) != "a" {
		t.Errorf("dev_0 reports: %+v", rs)
	}
}

// TestCancelledWhileQueued: a caller whose context ends while its report
// waits for the writer gets the context's error and the report is not
// stored; its retry stores it.
func TestCancelledWhileQueued(t *testing.T) {
	s := openTest(t, Options{})
	enrolN(t, s, 1)
	release := blockWriter(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := s.SaveReport(ctx, testReport("dev_0", 1, "a", store.Pass))
		done <- err
	}()
	waitQueued(s, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled save: %v", err)
	}
	release()
	if rs, _ := s.Reports(context.Background(), "dev_0", 0); len(rs) != 0 {
		t.Fatalf("a cancelled report was stored: %+v", rs)
	}
	if stored, err := s.SaveReport(context.Background(), testReport("dev_0", 1, "a", store.Pass)); err != nil || !stored {
		t.Fatalf("retry: stored=%v err=%v", stored, err)
	}
}

// TestNoBusyUnderLoad runs 64 writers of reports, enrolments, admin
// writes and 200 readers at once: nothing fails (no SQLITE_BUSY), and
// the readers share the bounded pool.
func TestNoBusyUnderLoad(t *testing.T) {
	s := openTest(t, Options{MaxReaders: 4})
	ctx := context.Background()
	enrolN(t, s, 64)
	hash := []byte("more-token-hash-0123456789abcdef")
	now := time.Now()
	if err := s.CreateToken(ctx, store.Token{ID: "tok2", Hash: hash, Group: "staff", Uses: 64, UsesLeft: 64, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10000)
	for i := range 64 {
		dev := fmt.Sprintf("dev_%d", i)
		wg.Go(func() {
			for seq := uint64(1); seq <= 10; seq++ {
				v := store.Pass
				if seq%2 == 0 {
					v = store.Fail
				}
				if _, err := s.SaveReport(ctx, testReport(dev, seq, fmt.Sprint(seq), v)); err != nil {
					errs <- err
				}
			}
		})
		wg.Go(func() {
			_, err := s.Enroll(ctx, store.EnrollParams{TokenHash: hash, Now: now, NewID: fmt.Sprintf("new_%d", i)},
				func(id string) (store.Issued, error) {
					return store.Issued{Serial: "n-" + id, NotAfter: now.Add(time.Hour)}, nil
				})
			if err != nil {
				errs <- err
			}
		})
	}
	for i := range 200 {
		wg.Go(func() {
			if _, err := s.RuleStates(ctx, fmt.Sprintf("dev_%d", i%64)); err != nil {
				errs <- err
			}
			if _, err := s.FailingSince(ctx, fmt.Sprintf("dev_%d", i%64)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st := s.db.Stats(); st.MaxOpenConnections != 4 || st.OpenConnections > 4 {
		t.Errorf("read pool: %+v, want at most 4 connections", st)
	}
	if st := s.w.Stats(); st.MaxOpenConnections != 1 || st.OpenConnections > 1 {
		t.Errorf("write pool: %+v, want one connection", st)
	}
	ds, _ := s.Devices(ctx)
	if len(ds) != 128 {
		t.Errorf("%d devices, want 128", len(ds))
	}
	for _, d := range ds[:64] {
		if d.LastSequence != 10 || d.Fail != 1 {
			t.Errorf("%s: %+v", d.ID, d)
		}
	}
}

// TestBusyTimeoutOnEveryConnection reads busy_timeout back from a read
// connection and the write connection.
func TestBusyTimeoutOnEveryConnection(t *testing.T) {
	s := openTest(t, Options{})
	for name, db := range map[string]*sql.DB{"read": s.db, "write": s.w} {
		var ms int
		if err := db.QueryRow(`PRAGMA busy_timeout`).Scan(&ms); err != nil || ms != 10000 {
			t.Errorf("%s connection: busy_timeout %d, %v; want 10000", name, ms, err)
		}
	}
}
