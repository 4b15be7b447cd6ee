package server

import (
	"crypto/x509"
	"testing"
	"time"
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
