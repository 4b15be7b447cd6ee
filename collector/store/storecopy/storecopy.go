// Package storecopy moves a collector's fleet from its SQLite database to
// a PostgreSQL one (ward-collector store copy), table by table, and
// proves the copy: for every table the row count and a hash over its
// canonically encoded rows, computed from what was read on the source and
// again from what the target holds, must agree before the target's one
// transaction commits. Anything else (a target that is not empty, a
// column the target lacks, a value the target's column cannot hold
// exactly, a source that changed during the copy) is refused and leaves
// the target as it was.
//
// It relies on the PostgreSQL schema mirroring SQLite's table and column
// names (collector/store/postgres, "Schema"); types are converted by the
// target column's type, never guessed.
package storecopy

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// perBackend are tables each backend keeps for itself: the migration
// record (each has its own numbering) and the health probe's row.
var perBackend = map[string]bool{"schema_migrations": true, "health_probe": true}

// derived reports whether a SQLite table holds only what can be computed
// again from the others: the dashboard's aggregates (agg_*, kept on write
// from devices, rule states and transitions; docs/storage.md) and the
// hostname search index (device_search_ids, devices_search and FTS5's
// devices_search_* tables, kept by triggers on devices). Such a table is
// copied when the target has it and skipped when it does not: then the
// target derives its own (PostgreSQL answers the same queries from its
// indexes and its own triggers). Any other table the target lacks fails
// the copy.
func derived(table string) bool {
	return strings.HasPrefix(table, "agg_") || table == "device_search_ids" || table == "devices_search" || strings.HasPrefix(table, "devices_search_")
}

// Table is one table's outcome.
type Table struct {
	Name string
	// SourceRows and TargetRows count the rows read from SQLite and the
	// rows PostgreSQL holds after the copy.
	SourceRows, TargetRows int64
	// SourceHash and TargetHash are the table hashes (hex) of both sides.
	SourceHash, TargetHash string
	// Skipped is set for a derived table the target does not have: not
	// copied, and nothing is lost (see derived).
	Skipped bool
}

// OK reports whether both sides agree.
func (t Table) OK() bool {
	return t.Skipped || (t.SourceRows == t.TargetRows && t.SourceHash == t.TargetHash)
}

// ErrNotEmpty means the target already holds rows: a copy only goes into
// an empty (freshly migrated) database.
var ErrNotEmpty = errors.New("target database is not empty")

// ErrMismatch means a table's count or hash differ between the two sides
// after the copy; the target was rolled back.
var ErrMismatch = errors.New("copy does not match the source")

// ErrSourceChanged means another connection committed to the SQLite
// database while it was read (a collector still serving from it).
var ErrSourceChanged = errors.New("the SQLite database changed during the copy")

// SQLiteToPostgres copies every table of src (a SQLite database at the
// current schema), derived ones the target lacks aside, into dst (a PostgreSQL database migrated to the
// mirroring schema and otherwise empty) in one transaction on dst, and
// returns every table's counts and hashes, in copy order, then the
// skipped ones. dst is left as
// it was unless every table matches. src is read in one read transaction;
// a commit to it by anyone else meanwhile fails the copy with
// ErrSourceChanged.
func SQLiteToPostgres(ctx context.Context, src *sql.DB, dst *pgx.Conn) ([]Table, error) {
	sconn, err := src.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer sconn.Close()
	var v1 int64
	if err := sconn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v1); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	stx, err := sconn.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	defer stx.Rollback()
	names, err := sqliteTables(ctx, stx)
	if err != nil {
		return nil, err
	}
	ptx, err := dst.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer ptx.Rollback(ctx)
	target, err := pgTables(ctx, ptx)
	if err != nil {
		return nil, err
	}
	if err := lockAndCheckEmpty(ctx, ptx, target); err != nil {
		return nil, err
	}
	plans := make([]plan, 0, len(names))
	var skipped []Table
	for _, name := range names {
		if _, ok := target[name]; !ok && derived(name) {
			var n int64
			if err := stx.QueryRowContext(ctx, `SELECT count(*) FROM "`+name+`"`).Scan(&n); err != nil {
				return nil, fmt.Errorf("sqlite: %s: %w", name, err)
			}
			skipped = append(skipped, Table{Name: name, SourceRows: n, Skipped: true})
			continue
		}
		p, err := planTable(ctx, stx, name, target)
		if err != nil {
			return nil, err
		}
		plans = append(plans, p)
	}
	plans, err = byDependency(ctx, ptx, plans)
	if err != nil {
		return nil, err
	}
	var out []Table
	for _, p := range plans {
		t, err := copyTable(ctx, stx, ptx, p)
		if err != nil {
			return out, fmt.Errorf("table %s: %w", p.name, err)
		}
		out = append(out, t)
	}
	out = append(out, skipped...)
	if err := stx.Commit(); err != nil {
		return out, fmt.Errorf("sqlite: %w", err)
	}
	var v2 int64
	if err := sconn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v2); err != nil {
		return out, fmt.Errorf("sqlite: %w", err)
	}
	if v1 != v2 {
		return out, fmt.Errorf("%w (is a collector still serving from it? stop it and copy again); nothing was written to PostgreSQL", ErrSourceChanged)
	}
	var bad []string
	for _, t := range out {
		if !t.OK() {
			bad = append(bad, t.Name)
		}
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("%w: %s; nothing was written to PostgreSQL", ErrMismatch, strings.Join(bad, ", "))
	}
	if err := ptx.Commit(ctx); err != nil {
		return out, fmt.Errorf("postgres: commit: %w", err)
	}
	return out, nil
}

// column is a target column: its name and PostgreSQL type.
type column struct {
	name, typ string
	identity  bool
}

// plan is how one table is copied: the columns, in the source's order.
type plan struct {
	name string
	cols []column
	// order lists the primary key columns (or all), for a stable read.
	order []string
}

func sqliteTables(ctx context.Context, tx *sql.Tx) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tables: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		if !perBackend[n] {
			names = append(names, n)
		}
	}
	return names, rows.Err()
}

// pgTables maps each table of the current schema to its columns.
func pgTables(ctx context.Context, tx pgx.Tx) (map[string]map[string]column, error) {
	rows, err := tx.Query(ctx, `SELECT table_name, column_name, data_type, is_identity = 'YES'
		FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tables: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]column{}
	for rows.Next() {
		var t string
		var c column
		if err := rows.Scan(&t, &c.name, &c.typ, &c.identity); err != nil {
			return nil, err
		}
		if out[t] == nil {
			out[t] = map[string]column{}
		}
		out[t][c.name] = c
	}
	return out, rows.Err()
}

// lockAndCheckEmpty takes every target table's write lock (a collector
// started on the target meanwhile waits for the copy) and refuses a target
// that holds any row outside the per-backend tables.
func lockAndCheckEmpty(ctx context.Context, tx pgx.Tx, target map[string]map[string]column) error {
	var names []string
	for t := range target {
		if !perBackend[t] {
			names = append(names, t)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return errors.New("postgres: the target has none of the collector's tables (is it migrated?)")
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = pgx.Identifier{n}.Sanitize()
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(quoted, ", ")+` IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("postgres: lock: %w", err)
	}
	var full []string
	for i, n := range names {
		var any bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+quoted[i]+`)`).Scan(&any); err != nil {
			return fmt.Errorf("postgres: %s: %w", n, err)
		}
		if any {
			full = append(full, n)
		}
	}
	if len(full) > 0 {
		return fmt.Errorf("%w: %s hold rows; copy into a new, empty database (createdb), never over a fleet", ErrNotEmpty, strings.Join(full, ", "))
	}
	return nil
}

// planTable matches a source table's columns with the target's: every
// source column must exist there (a column the target lacks would be
// lost); a target column the source lacks takes its default.
func planTable(ctx context.Context, tx *sql.Tx, name string, target map[string]map[string]column) (plan, error) {
	tcols, ok := target[name]
	if !ok {
		return plan{}, fmt.Errorf("table %s is not in the PostgreSQL schema: its rows would be lost (is the PostgreSQL store older than this SQLite database?)", name)
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info(?) ORDER BY cid`, name)
	if err != nil {
		return plan{}, fmt.Errorf("sqlite: columns of %s: %w", name, err)
	}
	defer rows.Close()
	p := plan{name: name}
	pk := map[int]string{}
	var missing []string
	for rows.Next() {
		var col string
		var pkPos int
		if err := rows.Scan(&col, &pkPos); err != nil {
			return plan{}, err
		}
		c, ok := tcols[col]
		if !ok {
			missing = append(missing, col)
			continue
		}
		p.cols = append(p.cols, c)
		if pkPos > 0 {
			pk[pkPos] = col
		}
	}
	if err := rows.Err(); err != nil {
		return plan{}, err
	}
	if len(missing) > 0 {
		return plan{}, fmt.Errorf("table %s: PostgreSQL has no column %s: its values would be lost", name, strings.Join(missing, ", "))
	}
	for i := 1; i <= len(pk); i++ {
		p.order = append(p.order, pk[i])
	}
	if len(p.order) == 0 {
		for _, c := range p.cols {
			p.order = append(p.order, c.name)
		}
	}
	return p, nil
}

// byDependency orders the plans so that a table comes after those its
// foreign keys reference (PostgreSQL checks them row by row).
func byDependency(ctx context.Context, tx pgx.Tx, plans []plan) ([]plan, error) {
	rows, err := tx.Query(ctx, `SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c
		JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'f' AND n.nspname = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("postgres: foreign keys: %w", err)
	}
	deps := map[string][]string{}
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			rows.Close()
			return nil, err
		}
		from, to = strings.Trim(from, `"`), strings.Trim(to, `"`)
		if from != to {
			deps[from] = append(deps[from], to)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	byName := map[string]plan{}
	for _, p := range plans {
		byName[p.name] = p
	}
	var out []plan
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(n string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("postgres: foreign keys form a cycle through %s", n)
		case 2:
			return nil
		}
		state[n] = 1
		for _, d := range deps[n] {
			if _, ok := byName[d]; ok {
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		state[n] = 2
		out = append(out, byName[n])
		return nil
	}
	for _, p := range plans {
		if err := visit(p.name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// copyTable streams one table into the target with COPY, hashing each
// row as converted, then hashes what the target holds.
func copyTable(ctx context.Context, stx *sql.Tx, ptx pgx.Tx, p plan) (Table, error) {
	names := make([]string, len(p.cols))
	quoted := make([]string, len(p.cols))
	for i, c := range p.cols {
		names[i] = c.name
		quoted[i] = `"` + strings.ReplaceAll(c.name, `"`, `""`) + `"`
	}
	order := make([]string, len(p.order))
	for i, c := range p.order {
		order[i] = `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
	}
	rows, err := stx.QueryContext(ctx, `SELECT `+strings.Join(quoted, ", ")+` FROM "`+p.name+`" ORDER BY `+strings.Join(order, ", "))
	if err != nil {
		return Table{}, fmt.Errorf("sqlite: %w", err)
	}
	defer rows.Close()
	src := &source{rows: rows, plan: p, vals: make([]any, len(p.cols)), ptrs: make([]any, len(p.cols))}
	for i := range src.vals {
		src.ptrs[i] = &src.vals[i]
	}
	n, err := ptx.CopyFrom(ctx, pgx.Identifier{p.name}, names, src)
	if src.err != nil {
		return Table{}, src.err
	}
	if err != nil {
		return Table{}, fmt.Errorf("postgres: copy: %w", err)
	}
	t := Table{Name: p.name, SourceRows: src.n, SourceHash: src.sum.hex()}
	if n != src.n {
		return t, fmt.Errorf("postgres took %d of %d rows", n, src.n)
	}
	// What the target holds, read back through the same encoding.
	trows, err := ptx.Query(ctx, `SELECT `+strings.Join(quoted, ", ")+` FROM `+pgx.Identifier{p.name}.Sanitize())
	if err != nil {
		return t, fmt.Errorf("postgres: read back: %w", err)
	}
	var sum tableSum
	for trows.Next() {
		vals, err := trows.Values()
		if err != nil {
			trows.Close()
			return t, fmt.Errorf("postgres: read back: %w", err)
		}
		h, err := rowHash(p, vals)
		if err != nil {
			trows.Close()
			return t, fmt.Errorf("postgres: read back: %w", err)
		}
		sum.add(h)
		t.TargetRows++
	}
	trows.Close()
	if err := trows.Err(); err != nil {
		return t, fmt.Errorf("postgres: read back: %w", err)
	}
	t.TargetHash = sum.hex()
	// Rows copied with their ids: move each identity past them, or the
	// next insert would reuse an id.
	for _, c := range p.cols {
		if c.identity {
			q := fmt.Sprintf(`SELECT setval(pg_get_serial_sequence($1, $2), max(%s)) FROM %s HAVING max(%s) IS NOT NULL`,
				pgx.Identifier{c.name}.Sanitize(), pgx.Identifier{p.name}.Sanitize(), pgx.Identifier{c.name}.Sanitize())
			if _, err := ptx.Exec(ctx, q, p.name, c.name); err != nil {
				return t, fmt.Errorf("postgres: identity %s.%s: %w", p.name, c.name, err)
			}
		}
	}
	return t, nil
}

// source feeds CopyFrom from the SQLite rows, converting each value to
// the target column's type and hashing the row.
type source struct {
	rows       *sql.Rows
	plan       plan
	vals, ptrs []any
	out        []any
	n          int64
	sum        tableSum
	err        error
}

func (s *source) Next() bool {
	if s.err != nil || !s.rows.Next() {
		return false
	}
	if err := s.rows.Scan(s.ptrs...); err != nil {
		s.err = fmt.Errorf("sqlite: %w", err)
		return false
	}
	out := make([]any, len(s.vals))
	for i, v := range s.vals {
		c, err := convert(v, s.plan.cols[i].typ)
		if err != nil {
			s.err = fmt.Errorf("row %d, column %s: %w", s.n+1, s.plan.cols[i].name, err)
			return false
		}
		out[i] = c
	}
	h, err := rowHash(s.plan, out)
	if err != nil {
		s.err = err
		return false
	}
	s.sum.add(h)
	s.out = out
	s.n++
	return true
}

func (s *source) Values() ([]any, error) { return s.out, nil }

func (s *source) Err() error {
	if s.err != nil {
		return s.err
	}
	return s.rows.Err()
}

// convert turns a SQLite value into the Go value for a PostgreSQL column
// of type typ, exactly or not at all.
func convert(v any, typ string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case "bigint", "integer", "smallint":
		if i, ok := v.(int64); ok {
			return i, nil
		}
	case "text", "character varying":
		switch x := v.(type) {
		case string:
			if err := validText(x); err != nil {
				return nil, err
			}
			return x, nil
		case []byte:
			if err := validText(string(x)); err != nil {
				return nil, err
			}
			return string(x), nil
		}
	case "bytea":
		switch x := v.(type) {
		case []byte:
			return append([]byte{}, x...), nil
		case string:
			return []byte(x), nil
		}
	case "double precision", "real":
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		}
	case "boolean":
		if i, ok := v.(int64); ok && (i == 0 || i == 1) {
			return i == 1, nil
		}
	default:
		return nil, fmt.Errorf("PostgreSQL type %s is not one the copy knows", typ)
	}
	return nil, fmt.Errorf("a %T value (%.40v) does not fit a %s column", v, v, typ)
}

// validText refuses what PostgreSQL's TEXT cannot hold as it is.
func validText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("text that is not UTF-8, which PostgreSQL refuses")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("text with a NUL byte, which PostgreSQL refuses")
	}
	return nil
}

// rowHash is the SHA-256 of a row's canonical encoding: per column a type
// tag and the value — N (NULL), I and 8 bytes big-endian (integers), F
// and the IEEE 754 bits (floats), T or B and a length-prefixed byte
// string (text, bytes), 0 or 1 (booleans) — so equal rows on both sides
// hash alike whatever driver read them.
func rowHash(p plan, vals []any) ([32]byte, error) {
	h := sha256.New()
	var b [9]byte
	for i, v := range vals {
		switch x := v.(type) {
		case nil:
			h.Write([]byte{'N'})
		case int64:
			b[0] = 'I'
			binary.BigEndian.PutUint64(b[1:], uint64(x))
			h.Write(b[:])
		case int32:
			b[0] = 'I'
			binary.BigEndian.PutUint64(b[1:], uint64(int64(x)))
			h.Write(b[:])
		case int16:
			b[0] = 'I'
			binary.BigEndian.PutUint64(b[1:], uint64(int64(x)))
			h.Write(b[:])
		case float64:
			b[0] = 'F'
			binary.BigEndian.PutUint64(b[1:], math.Float64bits(x))
			h.Write(b[:])
		case float32:
			b[0] = 'F'
			binary.BigEndian.PutUint64(b[1:], math.Float64bits(float64(x)))
			h.Write(b[:])
		case bool:
			if x {
				h.Write([]byte{'1'})
			} else {
				h.Write([]byte{'0'})
			}
		case string:
			b[0] = 'T'
			binary.BigEndian.PutUint64(b[1:], uint64(len(x)))
			h.Write(b[:])
			h.Write([]byte(x))
		case []byte:
			b[0] = 'B'
			binary.BigEndian.PutUint64(b[1:], uint64(len(x)))
			h.Write(b[:])
			h.Write(x)
		default:
			return [32]byte{}, fmt.Errorf("column %s: no canonical encoding for %T", p.cols[i].name, v)
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}

// tableSum combines row hashes by addition modulo 2^256: independent of
// the order rows come in (the two databases need not agree on one), and,
// unlike XOR, a row present twice does not cancel out.
type tableSum struct{ v big.Int }

var mod256 = new(big.Int).Lsh(big.NewInt(1), 256)

func (s *tableSum) add(h [32]byte) {
	s.v.Add(&s.v, new(big.Int).SetBytes(h[:]))
	if s.v.Cmp(mod256) >= 0 {
		s.v.Sub(&s.v, mod256)
	}
}

func (s *tableSum) hex() string {
	var b [32]byte
	s.v.FillBytes(b[:])
	return hex.EncodeToString(b[:])
}
