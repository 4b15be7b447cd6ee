package server

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// TestVerifiedCovers: a connection's verified chain is reused only with
// the same roots and while every certificate of it is valid; a new pool
// (the CA replaced or imported) or a time outside the chain's validity
// verifies it again.
func TestVerifiedCovers(t *testing.T) {
	pool, other := x509.NewCertPool(), x509.NewCertPool()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v := verified{pool: pool, from: from, through: from.Add(24 * time.Hour)}
	for _, c := range []struct {
		name string
		pool *x509.CertPool
		at   time.Time
		want bool
	}{
		{"same pool, inside", pool, from.Add(time.Hour), true},
		{"same pool, first instant", pool, from, true},
		{"same pool, last instant", pool, from.Add(24 * time.Hour), true},
		{"same pool, before", pool, from.Add(-time.Second), false},
		{"same pool, after", pool, from.Add(24*time.Hour + time.Second), false},
		{"other pool", other, from.Add(time.Hour), false},
	} {
		if got := v.covers(c.pool, c.at); got != c.want {
			t.Errorf("%s: covers = %v, want %v", c.name, got, c.want)
		}
	}
	if (verified{}).covers(nil, from) {
		t.Error("a chain never verified covers nothing")
	}
}

// TestIdentitiesForget: a device cached on a connection is stale once
// forgotten (another collector changed it) or once everything is
// forgotten, but not when another device is; its verified chain stays.
func TestIdentitiesForget(t *testing.T) {
	c := newIdentities(time.Hour)
	conn := func(id string) (context.Context, *x509.Certificate) {
		ctx := connTagger{}.TagConn(context.Background(), nil)
		leaf := &x509.Certificate{}
		chain := verified{pool: x509.NewCertPool(), through: time.Now().Add(time.Hour)}
		c.put(ctx, leaf, store.Device{ID: id}, chain, time.Now(), c.mark())
		return ctx, leaf
	}
	ctxA, leafA := conn("a")
	ctxB, leafB := conn("b")
	if dev, _, ok := c.get(ctxA, leafA); !ok || dev.ID != "a" {
		t.Fatalf("fresh entry: %v %v", dev.ID, ok)
	}
	if _, _, ok := c.get(ctxA, &x509.Certificate{}); ok {
		t.Error("an entry is used for another certificate")
	}
	if _, _, ok := c.get(context.Background(), leafA); ok {
		t.Error("an entry without a connection")
	}
	c.forget("a")
	if _, chain, ok := c.get(ctxA, leafA); ok || chain.pool == nil {
		t.Errorf("forgotten device: ok %v, chain kept %v", ok, chain.pool != nil)
	}
	if _, _, ok := c.get(ctxB, leafB); !ok {
		t.Error("forgetting a made b stale")
	}
	// Checked again after the forget: fresh.
	c.put(ctxA, leafA, store.Device{ID: "a"}, verified{}, time.Now(), c.mark())
	if _, _, ok := c.get(ctxA, leafA); !ok {
		t.Error("re-checked device still stale")
	}
	c.forgetAll()
	for name, cc := range map[string]struct {
		ctx  context.Context
		leaf *x509.Certificate
	}{"a": {ctxA, leafA}, "b": {ctxB, leafB}} {
		if _, _, ok := c.get(cc.ctx, cc.leaf); ok {
			t.Errorf("%s fresh after forgetAll", name)
		}
	}
	// A check that started before a forget is stale, even if it is put after.
	ctxC := connTagger{}.TagConn(context.Background(), nil)
	leafC, mark := &x509.Certificate{}, c.mark()
	c.forget("c")
	c.put(ctxC, leafC, store.Device{ID: "c"}, verified{}, time.Now(), mark)
	if _, _, ok := c.get(ctxC, leafC); ok {
		t.Error("a check that raced a forget is used")
	}
}
