package token

import (
	"context"

	"github.com/wardhq/ward/collector/store"
)

// Audited returns st whose CreateToken also writes the audit entry entry
// makes for the token, in the same transaction (store.Admin), so Create
// and CreateRebind through it never store a token the audit log misses.
func Audited(st store.Dashboard, entry func(store.Token) store.AuditEntry) store.Store {
	return audited{st, entry}
}

type audited struct {
	store.Dashboard
	entry func(store.Token) store.AuditEntry
}

func (a audited) CreateToken(ctx context.Context, t store.Token) error {
	return a.CreateTokenAudited(ctx, t, a.entry(t))
}
