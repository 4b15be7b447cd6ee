package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/evidence"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// RunChainConformance runs the suite for sealed reports and their chains
// (docs/evidence.md, "Chains"): seals kept with their reports, gaps told
// apart by the agent's drop count, gaps filled later, forks by a
// duplicate or a mismatching predecessor, and EvidenceReports' period.
func RunChainConformance(t *testing.T, newStore func() store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store, store.Chains)
	}{
		{"GapsDroppedAndMissing", testChainGaps},
		{"GapFilledLater", testChainGapFilled},
		{"ForkByDuplicatePredecessor", testForkDuplicate},
		{"ForkByMismatchingPredecessor", testForkMismatch},
		{"EvidenceReportsPeriod", testEvidenceReports},
		{"FirstSealed", testFirstSealed},
		{"SealHash", testSealHash},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			t.Cleanup(func() { s.Close() })
			cs, ok := s.(store.Chains)
			if !ok {
				t.Fatalf("%T does not implement store.Chains", s)
			}
			tc.fn(t, s, cs)
		})
	}
}

// chainer seals reports of one device and epoch for the store (the
// store does not verify signatures: the collector does before it).
type chainer struct {
	t      *testing.T
	s      store.Store
	dev    string
	epoch  uint64
	hashes map[uint64][]byte
}

func newChainer(t *testing.T, s store.Store, dev string) *chainer {
	t.Helper()
	mkToken(t, s, "tok_"+dev, "secret-"+dev, "staff", 1, time.Hour)
	mustEnroll(t, s, "secret-"+dev, dev, "")
	return &chainer{t: t, s: s, dev: dev, hashes: map[uint64][]byte{}}
}

var genesisOf = hash("genesis")

// sealed is report seq chained to prev (nil: to the report at seq-1 as
// this chainer sealed it, or the genesis for seq 1) with the agent's
// drop count dropped, received at at.
func (c *chainer) sealed(seq uint64, prev []byte, dropped uint64, at time.Time) store.Report {
	c.t.Helper()
	if prev == nil {
		prev = c.hashes[seq-1]
		if seq == 1 {
			prev = genesisOf
		}
		if prev == nil {
			prev = hash(fmt.Sprintf("unsealed by this test %d", seq-1))
		}
	}
	st := &wardv1.ReportStatement{DeviceId: c.dev, Epoch: c.epoch, Sequence: seq, PolicyName: "baseline", PolicyVersion: 1,
		FactsDigest: hash("facts"), DroppedTotal: dropped, PrevHash: prev, KeyId: hash("key")}
	enc, err := evidence.EncodeStatement(st)
	if err != nil {
		c.t.Fatal(err)
	}
	h := evidence.StatementHash(enc)
	c.hashes[seq] = h
	r := report(c.dev, seq, at, store.Pass)
	r.Epoch, r.ContentHash, r.ObservedAt = c.epoch, h, at
	r.Seal = &store.ReportSeal{Statement: enc, Hash: h, PrevHash: prev, KeyID: hash("key"), Signature: []byte(fmt.Sprintf("sig-%d", seq))}
	return r
}

func (c *chainer) save(r store.Report) {
	c.t.Helper()
	if stored, err := c.s.SaveReport(context.Background(), r); err != nil || !stored {
		c.t.Fatalf("SaveReport(epoch %d sequence %d) = %v, %v", r.Epoch, r.Sequence, stored, err)
	}
}

func (c *chainer) seal(seq, dropped uint64, at time.Time) {
	c.t.Helper()
	c.save(c.sealed(seq, nil, dropped, at))
}

type gapWant struct{ epoch, after, before, dropped uint64 }

func checkGaps(t *testing.T, cs store.Chains, dev string, want ...gapWant) []store.ChainGap {
	t.Helper()
	gs, err := cs.ChainGaps(context.Background(), dev)
	if err != nil {
		t.Fatal(err)
	}
	var got []gapWant
	for _, g := range gs {
		if g.DeviceID != dev {
			t.Errorf("gap %+v: device %q, want %q", g, g.DeviceID, dev)
		}
		got = append(got, gapWant{g.Epoch, g.After, g.Before, g.Dropped})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ChainGaps = %v, want %v", got, want)
	}
	return gs
}

func testChainGaps(t *testing.T, s store.Store, cs store.Chains) {
	c := newChainer(t, s, "dev_gaps")
	at := t0.Add(time.Hour)
	c.seal(1, 0, at)
	c.seal(2, 0, at.Add(time.Hour))
	checkGaps(t, cs, c.dev)
	// 3, 4 and 5 never arrive; the agent says it dropped 3 of them:
	// an honest drop.
	c.seal(6, 3, at.Add(2*time.Hour))
	// 7 to 9 never arrive and 10's count did not grow across them.
	c.seal(10, 3, at.Add(3*time.Hour))
	// 11 never arrives; the count grew by 7 (drops of reports sealed
	// before 10 was, say). The epoch's latest count, 10, is spent on the
	// missing sequences oldest first (store.AttributeDrops), each gap at
	// most its size: 3, 3 and 1.
	c.seal(12, 10, at.Add(4*time.Hour))
	gs := checkGaps(t, cs, c.dev, gapWant{0, 2, 6, 3}, gapWant{0, 6, 10, 3}, gapWant{0, 10, 12, 1})
	if gs[0].Missing() != 3 || !gs[0].RecordedAt.Equal(at.Add(2*time.Hour)) {
		t.Errorf("gap after 2: missing %d recorded %v, want 3 at the receipt of 6", gs[0].Missing(), gs[0].RecordedAt)
	}
	// A redelivery of 12 changes nothing.
	if stored, err := s.SaveReport(context.Background(), c.sealed(12, nil, 10, at.Add(4*time.Hour))); err == nil && stored {
		t.Errorf("redelivery of 12 stored again")
	}
	checkGaps(t, cs, c.dev, gapWant{0, 2, 6, 3}, gapWant{0, 6, 10, 3}, gapWant{0, 10, 12, 1})
	// Unsealed reports are not in the chain: they make no gaps.
	for _, seq := range []uint64{1, 5} {
		r := report("dev_plain", seq, at, store.Pass)
		if seq == 1 {
			mkToken(t, s, "tok_plain", "secret-plain", "staff", 1, time.Hour)
			mustEnroll(t, s, "secret-plain", "dev_plain", "")
		}
		if _, err := s.SaveReport(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	checkGaps(t, cs, "dev_plain")
	// Each epoch has its own chain.
	if _, err := s.StartEpoch(context.Background(), c.dev, at.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.epoch, c.hashes = 1, map[uint64][]byte{}
	c.seal(1, 0, at.Add(6*time.Hour))
	c.seal(3, 0, at.Add(7*time.Hour))
	checkGaps(t, cs, c.dev, gapWant{0, 2, 6, 3}, gapWant{0, 6, 10, 3}, gapWant{0, 10, 12, 1}, gapWant{1, 1, 3, 0})
	if fs, err := cs.ChainForks(context.Background(), c.dev); err != nil || len(fs) != 0 {
		t.Errorf("ChainForks = %+v, %v; want none", fs, err)
	}
}

func testChainGapFilled(t *testing.T, s store.Store, cs store.Chains) {
	c := newChainer(t, s, "dev_fill")
	at := t0.Add(time.Hour)
	c.seal(1, 0, at)
	c.seal(2, 0, at.Add(time.Hour))
	// 3 to 7 are late (sealed before 8, delivered after it); the agent
	// dropped two reports by the time it sealed 8.
	r3, r4, r5, r6, r7 := c.sealed(3, nil, 0, at), c.sealed(4, nil, 1, at), c.sealed(5, nil, 1, at), c.sealed(6, nil, 1, at), c.sealed(7, nil, 2, at)
	c.seal(8, 2, at.Add(2*time.Hour))
	checkGaps(t, cs, c.dev, gapWant{0, 2, 8, 2})
	// 5 arrives: the gap splits in two, each keeping when it was found;
	// the epoch's count, 2, goes to the older one first (the newer keeps
	// the 1 its part had).
	r5.ReceivedAt = at.Add(3 * time.Hour)
	c.save(r5)
	gs := checkGaps(t, cs, c.dev, gapWant{0, 2, 5, 2}, gapWant{0, 5, 8, 1})
	for _, g := range gs {
		if !g.RecordedAt.Equal(at.Add(2 * time.Hour)) {
			t.Errorf("gap %d..%d recorded %v, want %v (when it was found)", g.After, g.Before, g.RecordedAt, at.Add(2*time.Hour))
		}
	}
	// 3 and 7 shrink them from either side; 4 and 6 close them.
	c.save(r3)
	c.save(r7)
	checkGaps(t, cs, c.dev, gapWant{0, 3, 5, 1}, gapWant{0, 5, 7, 1})
	c.save(r4)
	c.save(r6)
	checkGaps(t, cs, c.dev)
	if fs, err := cs.ChainForks(context.Background(), c.dev); err != nil || len(fs) != 0 {
		t.Errorf("ChainForks = %+v, %v; want none (every late report chains)", fs, err)
	}
}

type forkWant struct{ seq, other uint64 }

func checkForks(t *testing.T, cs store.Chains, c *chainer, want ...forkWant) []store.ChainFork {
	t.Helper()
	fs, err := cs.ChainForks(context.Background(), c.dev)
	if err != nil {
		t.Fatal(err)
	}
	var got []forkWant
	for _, f := range fs {
		got = append(got, forkWant{f.Sequence, f.OtherSequence})
		if f.DeviceID != c.dev || f.Epoch != c.epoch || !bytes.Equal(f.Hash, c.hashes[f.Sequence]) || !bytes.Equal(f.Other, c.hashes[f.OtherSequence]) {
			t.Errorf("fork %+v: device, epoch or hashes are not those of %d and %d", f, f.Sequence, f.OtherSequence)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ChainForks = %v, want %v", got, want)
	}
	return fs
}

func testForkDuplicate(t *testing.T, s store.Store, cs store.Chains) {
	c := newChainer(t, s, "dev_dup")
	at := t0.Add(time.Hour)
	c.seal(1, 0, at)
	c.seal(2, 0, at.Add(time.Hour))
	// 5 claims 1 as its predecessor, which 2 already claims (a
	// restored copy of the agent, say): a fork, and the report is kept.
	c.save(c.sealed(5, c.hashes[1], 0, at.Add(2*time.Hour)))
	fs := checkForks(t, cs, c, forkWant{5, 2})
	if !bytes.Equal(fs[0].PrevHash, c.hashes[1]) || !fs[0].RecordedAt.Equal(at.Add(2*time.Hour)) {
		t.Errorf("fork = %+v, want prev_hash of 1, recorded at 5's receipt", fs[0])
	}
	if rs, _ := s.Reports(context.Background(), c.dev, 0); len(rs) != 3 || rs[0].Sequence != 5 {
		t.Errorf("reports after the fork: %d, newest %d; want 3, newest 5", len(rs), rs[0].Sequence)
	}
	// Two reports chained to the genesis: the second is a fork too.
	c.save(c.sealed(7, genesisOf, 0, at.Add(3*time.Hour)))
	checkForks(t, cs, c, forkWant{5, 2}, forkWant{7, 1})
}

func testForkMismatch(t *testing.T, s store.Store, cs store.Chains) {
	c := newChainer(t, s, "dev_mis")
	at := t0.Add(time.Hour)
	c.seal(1, 0, at)
	c.seal(2, 0, at.Add(time.Hour))
	// 3 names a predecessor that is not the stored 2.
	c.save(c.sealed(3, hash("another 2"), 0, at.Add(2*time.Hour)))
	checkForks(t, cs, c, forkWant{3, 2})
	checkGaps(t, cs, c.dev)
	// Arriving in the other order: 6 is stored, then a 5 that 6 does
	// not chain to. The fork is 6's, against 5.
	r5 := c.sealed(5, hash("yet another 4"), 0, at)
	c.save(c.sealed(6, hash("the real 5"), 0, at.Add(3*time.Hour)))
	c.save(r5)
	checkForks(t, cs, c, forkWant{3, 2}, forkWant{6, 5})
	// 4 does not chain to 3: a gap no more, and one more fork.
	c.save(c.sealed(4, hash("no 3"), 0, at.Add(4*time.Hour)))
	checkForks(t, cs, c, forkWant{3, 2}, forkWant{4, 3}, forkWant{5, 4}, forkWant{6, 5})
	checkGaps(t, cs, c.dev)
}

func testEvidenceReports(t *testing.T, s store.Store, cs store.Chains) {
	ctx := context.Background()
	c := newChainer(t, s, "dev_ev")
	day := func(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }
	// Observed on days 1 to 5, all received on day 6 (an offline week).
	var want []store.Report
	for i := 1; i <= 5; i++ {
		r := c.sealed(uint64(i), nil, 0, day(6))
		r.ObservedAt, r.CollectedAt = day(i), day(i)
		if i == 3 {
			// A report with other facts, and one without a seal (an
			// older agent's, say) among them.
			r.Facts, r.Results[0].Collector = []byte{0x0a, 0x02, 0x08, 0x01}, store.Fail
		}
		if i == 4 {
			r.Seal, r.ContentHash = nil, hash("unsealed 4")
		}
		c.save(r)
		want = append(want, r)
	}
	check := func(from, to time.Time, seqs ...uint64) []store.Report {
		t.Helper()
		rs, err := cs.EvidenceReports(ctx, c.dev, from, to)
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		for _, r := range rs {
			got = append(got, r.Sequence)
		}
		if fmt.Sprint(got) != fmt.Sprint(seqs) {
			t.Fatalf("EvidenceReports(%s, %s) = %v, want %v", from.Format(time.DateOnly), to.Format(time.DateOnly), got, seqs)
		}
		return rs
	}
	// [day 2, day 4): 2 and 3, with the last before (1) and the first at
	// or after day 4 (4).
	rs := check(day(2), day(4), 1, 2, 3, 4)
	for _, r := range rs {
		w := want[r.Sequence-1]
		if !bytes.Equal(r.Facts, w.Facts) || len(r.Results) != 1 || r.Results[0].Collector != w.Results[0].Collector {
			t.Errorf("report %d: facts %x results %+v, want %x %+v", r.Sequence, r.Facts, r.Results, w.Facts, w.Results)
		}
		if !r.ObservedAt.Equal(w.ObservedAt) || !r.ReceivedAt.Equal(day(6)) || r.Epoch != 0 {
			t.Errorf("report %d: observed %v received %v epoch %d", r.Sequence, r.ObservedAt, r.ReceivedAt, r.Epoch)
		}
		switch {
		case w.Seal == nil && r.Seal != nil:
			t.Errorf("report %d: seal %+v, want none", r.Sequence, r.Seal)
		case w.Seal != nil && (r.Seal == nil || !bytes.Equal(r.Seal.Statement, w.Seal.Statement) || !bytes.Equal(r.Seal.Hash, w.Seal.Hash) ||
			!bytes.Equal(r.Seal.PrevHash, w.Seal.PrevHash) || !bytes.Equal(r.Seal.KeyID, w.Seal.KeyID) || !bytes.Equal(r.Seal.Signature, w.Seal.Signature)):
			t.Errorf("report %d: seal %+v, want %+v", r.Sequence, r.Seal, w.Seal)
		}
	}
	// Bounds: from is inclusive (day 2 is in), to exclusive (day 4 is
	// the first after).
	check(day(2).Add(time.Nanosecond), day(4).Add(time.Nanosecond), 2, 3, 4, 5)
	check(day(0), day(1), 1)
	check(day(0), day(9), 1, 2, 3, 4, 5)
	check(day(7), day(9), 5)
	check(day(1), day(2), 1, 2)
	if rs, err := cs.EvidenceReports(ctx, "dev_none", day(0), day(9)); err != nil || len(rs) != 0 {
		t.Errorf("EvidenceReports(unknown device) = %v, %v; want none", rs, err)
	}
	// In (epoch, sequence) order, whatever the times: a re-bind whose
	// first report is observed before the old epoch's last.
	if _, err := s.StartEpoch(ctx, c.dev, day(6)); err != nil {
		t.Fatal(err)
	}
	c.epoch, c.hashes = 1, map[uint64][]byte{}
	r := c.sealed(1, nil, 0, day(7))
	r.ObservedAt = day(5).Add(-time.Hour)
	c.save(r)
	rs = check(day(4), day(9), 3, 4, 5, 1)
	if rs[3].Epoch != 1 || rs[3].Seal == nil {
		t.Errorf("epoch 1 report: %+v", rs[3])
	}
}

func testFirstSealed(t *testing.T, s store.Store, cs store.Chains) {
	ctx := context.Background()
	sf, ok := s.(store.SealedFrom)
	if !ok {
		t.Fatalf("%T does not implement store.SealedFrom", s)
	}
	c := newChainer(t, s, "dev_first")
	first := func(epoch, want uint64) {
		t.Helper()
		if got, err := sf.FirstSealed(ctx, c.dev, epoch); err != nil || got != want {
			t.Fatalf("FirstSealed(epoch %d) = %d, %v; want %d", epoch, got, err, want)
		}
	}
	first(0, 0)
	for seq := uint64(1); seq <= 2; seq++ {
		r := report(c.dev, seq, t0.Add(time.Duration(seq)*time.Hour), store.Pass)
		r.ContentHash = hash(fmt.Sprint("plain ", seq))
		c.save(r)
	}
	first(0, 0)
	c.save(c.sealed(3, []byte{}, 0, t0.Add(3*time.Hour)))
	c.seal(4, 0, t0.Add(4*time.Hour))
	first(0, 3)
	first(1, 0)
	if rr, ok := s.(store.ReportStateReader); ok {
		if st, err := rr.ReportState(ctx, c.dev); err != nil || st.FirstSealed != 3 {
			t.Errorf("ReportState.FirstSealed = %d, %v; want 3", st.FirstSealed, err)
		}
		if _, err := s.StartEpoch(ctx, c.dev, t0.Add(5*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if st, err := rr.ReportState(ctx, c.dev); err != nil || st.FirstSealed != 0 {
			t.Errorf("ReportState.FirstSealed in a new epoch = %d, %v; want 0", st.FirstSealed, err)
		}
	}
	checkGaps(t, cs, c.dev)
	rs, err := cs.EvidenceReports(ctx, c.dev, t0, t0.Add(9*time.Hour))
	if err != nil || len(rs) != 4 || rs[2].Seal == nil || len(rs[2].Seal.PrevHash) != 0 {
		t.Fatalf("EvidenceReports = %+v, %v; want 4, the third sealed with no prev_hash", rs, err)
	}
}

// testSealHash: the statement hash of a stored sealed report, by epoch
// and sequence; nil for an unsealed report, one not stored, another
// epoch's or another device's.
func testSealHash(t *testing.T, s store.Store, cs store.Chains) {
	ctx := context.Background()
	sf, ok := s.(store.SealedFrom)
	if !ok {
		t.Fatalf("%T does not implement store.SealedFrom", s)
	}
	c := newChainer(t, s, "dev_sealhash")
	other := newChainer(t, s, "dev_sealhash_other")
	plain := report(c.dev, 1, t0.Add(time.Hour), store.Pass)
	plain.ContentHash = hash("plain 1")
	c.save(plain)
	c.seal(2, 0, t0.Add(2*time.Hour))
	c.seal(3, 0, t0.Add(3*time.Hour))
	other.seal(4, 0, t0.Add(4*time.Hour))
	for _, tt := range []struct {
		dev        string
		epoch, seq uint64
		want       []byte
	}{
		{c.dev, 0, 1, nil},
		{c.dev, 0, 2, c.hashes[2]},
		{c.dev, 0, 3, c.hashes[3]},
		{c.dev, 0, 4, nil},
		{c.dev, 1, 2, nil},
		{other.dev, 0, 4, other.hashes[4]},
		{other.dev, 0, 3, nil},
		{"dev_nobody", 0, 2, nil},
	} {
		got, err := sf.SealHash(ctx, tt.dev, tt.epoch, tt.seq)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("SealHash(%s, %d, %d) = %x, %v; want %x", tt.dev, tt.epoch, tt.seq, got, err, tt.want)
		}
	}
	if len(c.hashes[2]) != evidence.HashSize || bytes.Equal(c.hashes[2], c.hashes[3]) {
		t.Fatalf("test hashes %x %x", c.hashes[2], c.hashes[3])
	}
}
