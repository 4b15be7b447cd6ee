package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wardhq/ward/collector/store"
)

// AddFeed implements store.FeedStore.
func (s *Store) AddFeed(ctx context.Context, f store.Feed) error {
	return s.AddFeedWithFiles(ctx, f, nil)
}

// AddFeedWithFiles implements store.FeedFiles as one job of the writer:
// the rollback check and the insert are one transaction.
func (s *Store) AddFeedWithFiles(ctx context.Context, f store.Feed, files []store.FeedSourceFile) error {
	serial, err := store.FeedSerialInt64(f.Serial)
	if err != nil {
		return fmt.Errorf("add feed: %w", err)
	}
	err = s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var top int64
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(serial), 0) FROM feeds`).Scan(&top); err != nil {
			return err
		}
		if serial <= top {
			return fmt.Errorf("serial %d, stored %d: %w", f.Serial, top, store.ErrFeedRollback)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO feeds (serial, generated_at, expires_at, imported_at, signed, sources) VALUES (?, ?, ?, ?, ?, ?)`,
			serial, nanos(f.GeneratedAt), nanos(f.ExpiresAt), nanos(f.ImportedAt), nonNil(f.Signed), nonNil(f.Sources)); err != nil {
			return err
		}
		for _, sf := range files {
			if _, err := tx.ExecContext(ctx, `INSERT INTO feed_source_files (serial, sha256, name, data) VALUES (?, ?, ?, ?)`,
				serial, nonNil(sf.SHA256), sf.Name, nonNil(sf.Data)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add feed: %w", err)
	}
	return nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

const feedColumns = `serial, generated_at, expires_at, imported_at, signed, sources`

func scanFeed(sc interface{ Scan(...any) error }) (store.Feed, error) {
	var f store.Feed
	var serial, gen, exp, imp int64
	if err := sc.Scan(&serial, &gen, &exp, &imp, &f.Signed, &f.Sources); err != nil {
		return f, err
	}
	f.Serial = uint64(serial)
	f.GeneratedAt, f.ExpiresAt, f.ImportedAt = fromNanos(gen), fromNanos(exp), fromNanos(imp)
	return f, nil
}

// CurrentFeed implements store.FeedStore.
func (s *Store) CurrentFeed(ctx context.Context) (store.Feed, error) {
	f, err := scanFeed(s.queryRow(ctx, `SELECT `+feedColumns+` FROM feeds ORDER BY serial DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Feed{}, fmt.Errorf("current feed: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Feed{}, fmt.Errorf("current feed: %w", err)
	}
	return f, nil
}

// FeedBySerial implements store.FeedStore.
func (s *Store) FeedBySerial(ctx context.Context, serial uint64) (store.Feed, error) {
	n, err := store.FeedSerialInt64(serial)
	if err != nil {
		return store.Feed{}, fmt.Errorf("feed %d: %w", serial, store.ErrNotFound)
	}
	f, err := scanFeed(s.queryRow(ctx, `SELECT `+feedColumns+` FROM feeds WHERE serial = ?`, n))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Feed{}, fmt.Errorf("feed %d: %w", serial, store.ErrNotFound)
	}
	if err != nil {
		return store.Feed{}, fmt.Errorf("feed %d: %w", serial, err)
	}
	return f, nil
}

// Feeds implements store.FeedStore.
func (s *Store) Feeds(ctx context.Context) ([]store.Feed, error) {
	rows, err := s.query(ctx, `SELECT serial, generated_at, expires_at, imported_at, NULL, sources FROM feeds ORDER BY serial DESC`)
	if err != nil {
		return nil, fmt.Errorf("feeds: %w", err)
	}
	defer rows.Close()
	var out []store.Feed
	for rows.Next() {
		f, err := scanFeed(rows)
		if err != nil {
			return nil, fmt.Errorf("feeds: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("feeds: %w", err)
	}
	return out, nil
}

// CurrentFeedSerial implements store.FeedHead.
func (s *Store) CurrentFeedSerial(ctx context.Context) (uint64, error) {
	var n int64
	if err := s.queryRow(ctx, `SELECT coalesce(max(serial), 0) FROM feeds`).Scan(&n); err != nil {
		return 0, fmt.Errorf("current feed serial: %w", err)
	}
	return uint64(n), nil
}

// FeedFiles implements store.FeedFiles.
func (s *Store) FeedFiles(ctx context.Context, serial uint64) ([]store.FeedSourceFile, error) {
	n, err := store.FeedSerialInt64(serial)
	if err != nil {
		return nil, nil
	}
	rows, err := s.query(ctx, `SELECT name, sha256, data FROM feed_source_files WHERE serial = ? ORDER BY name, sha256`, n)
	if err != nil {
		return nil, fmt.Errorf("feed files: %w", err)
	}
	defer rows.Close()
	var out []store.FeedSourceFile
	for rows.Next() {
		var f store.FeedSourceFile
		if err := rows.Scan(&f.Name, &f.SHA256, &f.Data); err != nil {
			return nil, fmt.Errorf("feed files: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("feed files: %w", err)
	}
	return out, nil
}

var (
	_ store.FeedStore = (*Store)(nil)
	_ store.FeedHead  = (*Store)(nil)
	_ store.FeedFiles = (*Store)(nil)
)
