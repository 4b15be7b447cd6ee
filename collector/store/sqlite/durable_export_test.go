package sqlite

import "context"

// QueryPragma reads a pragma on one of the store's own connections (the
// per-connection ones, such as synchronous, differ from a fresh one's).
func (s *Store) QueryPragma(ctx context.Context, name string, v any) error {
	return s.db.QueryRowContext(ctx, "PRAGMA "+name).Scan(v)
}
