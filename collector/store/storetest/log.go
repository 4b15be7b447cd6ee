package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/evidence"
)

// RunLogConformance runs the suite for the evidence log (docs/evidence.md,
// "The log"): sealed reports appended once each in (received_at,
// device_id, epoch, sequence) order, unsealed ones never, a checkpoint
// per append that grew the log, and nothing kept of an append whose
// signing failed.
func RunLogConformance(t *testing.T, newStore func() store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store, store.LogStore)
	}{
		{"AppendOrderAndIdempotent", testLogAppend},
		{"SignFailureKeepsNothing", testLogSignFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore()
			t.Cleanup(func() { s.Close() })
			ls, ok := s.(store.LogStore)
			if !ok {
				t.Fatalf("%T does not implement store.LogStore", s)
			}
			tc.fn(t, s, ls)
		})
	}
}

// fakeSigner "signs" the log the store computed the root of.
type fakeSigner struct {
	calls int
	at    time.Time
}

func (f *fakeSigner) sign(size uint64, root []byte) (store.LogCheckpoint, error) {
	f.calls++
	return store.LogCheckpoint{Size: size, Root: root, At: f.at, Signature: []byte(fmt.Sprintf("sig-%d", size))}, nil
}

// mth is RFC 6962's Merkle tree hash of leaf hashes, by its definition
// (section 2.1), to check the store's incremental roots against.
func mth(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		sum := sha256.Sum256(nil)
		return sum[:]
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(mth(leaves[:k]))
	h.Write(mth(leaves[k:]))
	return h.Sum(nil)
}

type leafWant struct {
	dev      string
	epoch    uint64
	seq      uint64
	leafHash []byte
}

func checkLeaves(t *testing.T, ls store.LogStore, size uint64, want []leafWant) {
	t.Helper()
	got, err := ls.LogLeaves(context.Background(), size)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("LogLeaves(%d) = %d leaves %+v, want %d", size, len(got), got, len(want))
	}
	for i, l := range got {
		w := want[i]
		if l.Index != uint64(i) || l.DeviceID != w.dev || l.Epoch != w.epoch || l.Sequence != w.seq || !bytes.Equal(l.LeafHash, w.leafHash) {
			t.Errorf("leaf %d = {%d %s %d/%d %x}, want {%d %s %d/%d %x}", i, l.Index, l.DeviceID, l.Epoch, l.Sequence, l.LeafHash, i, w.dev, w.epoch, w.seq, w.leafHash)
		}
	}
}

func testLogAppend(t *testing.T, s store.Store, ls store.LogStore) {
	ctx := context.Background()
	f := &fakeSigner{at: t0.Add(10 * time.Hour)}
	if _, err := ls.LogCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LogCheckpoint of an empty log: %v, want ErrNotFound", err)
	}
	if n, err := ls.AppendLog(ctx, f.sign); err != nil || n != 0 || f.calls != 0 {
		t.Fatalf("AppendLog of nothing = %d, %v (sign called %d times), want 0, nil, never", n, err, f.calls)
	}
	a, b := newChainer(t, s, "dev_log_a"), newChainer(t, s, "dev_log_b")
	at := t0.Add(time.Hour)
	// Received: b1 first; then a1 and b2 at the same time (device id
	// decides: dev_log_a first); then an unsealed report of a; then a2.
	rb1 := b.sealed(1, nil, 0, at)
	b.save(rb1)
	ra1 := a.sealed(1, nil, 0, at.Add(time.Minute))
	a.save(ra1)
	rb2 := b.sealed(2, nil, 0, at.Add(time.Minute))
	b.save(rb2)
	a.save(report(a.dev, 2, at.Add(2*time.Minute), store.Pass))
	ra3 := a.sealed(3, nil, 0, at.Add(3*time.Minute))
	a.save(ra3)
	want := []leafWant{
		{b.dev, 0, 1, evidence.LeafHash(rb1.Seal.Statement)},
		{a.dev, 0, 1, evidence.LeafHash(ra1.Seal.Statement)},
		{b.dev, 0, 2, evidence.LeafHash(rb2.Seal.Statement)},
		{a.dev, 0, 3, evidence.LeafHash(ra3.Seal.Statement)},
	}
	if n, err := ls.AppendLog(ctx, f.sign); err != nil || n != 4 || f.calls != 1 {
		t.Fatalf("AppendLog = %d, %v (sign called %d times), want 4, nil, once", n, err, f.calls)
	}
	checkLeaves(t, ls, 100, want)
	checkLeaves(t, ls, 2, want[:2])
	cp, err := ls.LogCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRoot := mth([][]byte{want[0].leafHash, want[1].leafHash, want[2].leafHash, want[3].leafHash})
	if cp.Size != 4 || !bytes.Equal(cp.Root, wantRoot) || !cp.At.Equal(f.at) || string(cp.Signature) != "sig-4" {
		t.Fatalf("LogCheckpoint = %+v, want size 4, root %x", cp, wantRoot)
	}

	// Again: nothing new, no checkpoint.
	if n, err := ls.AppendLog(ctx, f.sign); err != nil || n != 0 || f.calls != 1 {
		t.Fatalf("AppendLog again = %d, %v (sign called %d times), want 0, nil, not again", n, err, f.calls)
	}
	// A report resent (the same sequence) changes nothing either.
	if stored, err := s.SaveReport(ctx, ra3); err != nil || stored {
		t.Fatalf("SaveReport(resent) = %v, %v", stored, err)
	}
	if n, err := ls.AppendLog(ctx, f.sign); err != nil || n != 0 {
		t.Fatalf("AppendLog after a resend = %d, %v, want 0", n, err)
	}

	// One more: appended after the others, a new checkpoint.
	f.at = f.at.Add(time.Minute)
	rb3 := b.sealed(3, nil, 0, at.Add(4*time.Minute))
	b.save(rb3)
	if n, err := ls.AppendLog(ctx, f.sign); err != nil || n != 1 {
		t.Fatalf("AppendLog = %d, %v, want 1", n, err)
	}
	want = append(want, leafWant{b.dev, 0, 3, evidence.LeafHash(rb3.Seal.Statement)})
	checkLeaves(t, ls, 100, want)
	// The root grew from the stored range, without the leaves: it is
	// still the tree hash of all five.
	var all [][]byte
	for _, w := range want {
		all = append(all, w.leafHash)
	}
	if cp, err := ls.LogCheckpoint(ctx); err != nil || cp.Size != 5 || string(cp.Signature) != "sig-5" || !cp.At.Equal(f.at) || !bytes.Equal(cp.Root, mth(all)) {
		t.Fatalf("LogCheckpoint = %+v, %v, want size 5 at %v, root %x", cp, err, f.at, mth(all))
	}
	// Three more, one append each: every root is the tree hash of all.
	for seq := uint64(4); seq <= 6; seq++ {
		r := b.sealed(seq, nil, 0, at.Add(time.Duration(4+seq)*time.Minute))
		b.save(r)
		all = append(all, evidence.LeafHash(r.Seal.Statement))
		if n, err := ls.AppendLog(ctx, f.sign); err != nil || n != 1 {
			t.Fatalf("AppendLog = %d, %v, want 1", n, err)
		}
		if cp, err := ls.LogCheckpoint(ctx); err != nil || cp.Size != uint64(len(all)) || !bytes.Equal(cp.Root, mth(all)) {
			t.Fatalf("LogCheckpoint after %d = %+v, %v, want root %x", len(all), cp, err, mth(all))
		}
	}
}

func testLogSignFailure(t *testing.T, s store.Store, ls store.LogStore) {
	ctx := context.Background()
	c := newChainer(t, s, "dev_log_fail")
	c.seal(1, 0, t0.Add(time.Hour))
	boom := errors.New("no key")
	if _, err := ls.AppendLog(ctx, func(uint64, []byte) (store.LogCheckpoint, error) { return store.LogCheckpoint{}, boom }); !errors.Is(err, boom) {
		t.Fatalf("AppendLog with a failing signer: %v, want %v", err, boom)
	}
	if leaves, err := ls.LogLeaves(ctx, 10); err != nil || len(leaves) != 0 {
		t.Fatalf("LogLeaves after a failed append = %v, %v, want none", leaves, err)
	}
	if _, err := ls.LogCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LogCheckpoint after a failed append: %v, want ErrNotFound", err)
	}
	f := &fakeSigner{at: t0}
	if n, err := ls.AppendLog(ctx, f.sign); err != nil || n != 1 {
		t.Fatalf("AppendLog after the failure = %d, %v, want 1", n, err)
	}
}
