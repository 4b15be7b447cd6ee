package service

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/wardhq/ward/agent/report/reporttest"
	"github.com/wardhq/ward/evidence"
)

// The service seals each report it queues with the enrolled identity's
// key, chained from the enrolment's genesis, and the collector takes the
// sealed reports.
func TestServiceSealsReports(t *testing.T) {
	c := fastCollector(t)
	id, dir := reporttest.Enrolled(t, c, "staff")
	c.Stop()
	s, err := New(Config{StateDir: dir, Source: bundle(t, "linux-plain-nft-empty"), CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for range 2 {
		if _, err := s.Once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	prev := id.Genesis
	if len(prev) != evidence.HashSize {
		t.Fatalf("the enrolled identity has genesis %x", prev)
	}
	for _, seq := range []uint64{1, 2} {
		r, err := s.ob.Read(seq)
		if err != nil {
			t.Fatal(err)
		}
		_, hash, err := evidence.VerifySeal(id.Cert.Leaf, id.DeviceID, r)
		if err != nil {
			t.Fatalf("report %d: VerifySeal: %v", seq, err)
		}
		if r.Epoch != id.Epoch || !bytes.Equal(r.Seal.PrevHash, prev) {
			t.Errorf("report %d: epoch %d, chained to %x; want epoch %d chained to %x", seq, r.Epoch, r.Seal.PrevHash, id.Epoch, prev)
		}
		prev = hash
	}
	c.Restart()
	out, err := s.Once(ctx)
	if err != nil || out.Delivered != 3 || out.Waiting != 0 {
		t.Fatalf("Once with the collector back = %+v, %v; want the three sealed reports delivered", out, err)
	}
	if got := len(c.Reports(id.DeviceID)); got != 3 {
		t.Errorf("collector stored %d reports, want 3", got)
	}
}
