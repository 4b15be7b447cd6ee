package loadgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/storeopen"
)

// Stored lists what a store holds for a device in an epoch.
type Stored interface {
	// Sequences returns the sequences stored for the device in epoch,
	// one per stored report (a report stored twice appears twice).
	Sequences(ctx context.Context, deviceID string, epoch uint64) ([]uint64, error)
	// ChainGaps and ChainForks are store.EvidenceStore's: the gaps and
	// forks SaveReport recorded in the device's chains. The read-only
	// stores here return the rows as recorded, without
	// store.AttributeDrops (a gap's Dropped is the recorded count).
	ChainGaps(ctx context.Context, deviceID string) ([]store.ChainGap, error)
	ChainForks(ctx context.Context, deviceID string) ([]store.ChainFork, error)
	Close() error
}

// chainGapsQuery and chainForksQuery read the chain tables as the
// stores' ChainGaps and ChainForks do ($1: the device; SQLite takes the
// same placeholder).
const (
	chainGapsQuery  = `SELECT epoch, after_sequence, before_sequence, dropped FROM chain_gaps WHERE device_id = $1 ORDER BY epoch, after_sequence`
	chainForksQuery = `SELECT epoch, sequence, prev_hash, hash, other, other_sequence FROM chain_forks WHERE device_id = $1 ORDER BY epoch, sequence, other_sequence`
)

// rowScanner is a row of database/sql or pgx.
type rowScanner interface{ Scan(dest ...any) error }

func scanGap(deviceID string, r rowScanner) (store.ChainGap, error) {
	var e, after, before, dropped int64
	if err := r.Scan(&e, &after, &before, &dropped); err != nil {
		return store.ChainGap{}, fmt.Errorf("chain gaps: %w", err)
	}
	return store.ChainGap{DeviceID: deviceID, Epoch: uint64(e), After: uint64(after), Before: uint64(before), Dropped: uint64(dropped)}, nil
}

func scanFork(deviceID string, r rowScanner) (store.ChainFork, error) {
	f := store.ChainFork{DeviceID: deviceID}
	var e, seq, other int64
	if err := r.Scan(&e, &seq, &f.PrevHash, &f.Hash, &f.Other, &other); err != nil {
		return f, fmt.Errorf("chain forks: %w", err)
	}
	f.Epoch, f.Sequence, f.OtherSequence = uint64(e), uint64(seq), uint64(other)
	return f, nil
}

// OpenSQLite opens the collector database in dataDir read-only: the
// collector may be running, and verifying must not change what it
// verifies.
func OpenSQLite(dataDir string) (Stored, error) {
	path := filepath.Join(dataDir, server.DatabaseFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("collector database: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("open %s read-only: %w", path, err)
	}
	return sqliteStored{db}, nil
}

type sqliteStored struct{ db *sql.DB }

func (s sqliteStored) Sequences(ctx context.Context, deviceID string, epoch uint64) ([]uint64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT sequence FROM reports WHERE device_id = ? AND epoch = ? ORDER BY sequence`, deviceID, epoch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var n uint64
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

func (s sqliteStored) ChainGaps(ctx context.Context, deviceID string) ([]store.ChainGap, error) {
	return sqliteRows(ctx, s.db, chainGapsQuery, deviceID, scanGap)
}

func (s sqliteStored) ChainForks(ctx context.Context, deviceID string) ([]store.ChainFork, error) {
	return sqliteRows(ctx, s.db, chainForksQuery, deviceID, scanFork)
}

func sqliteRows[T any](ctx context.Context, db *sql.DB, query, deviceID string, scan func(string, rowScanner) (T, error)) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, deviceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		x, err := scan(deviceID, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

func (s sqliteStored) Close() error { return s.db.Close() }

// Open opens the store spec names, as ward-collector's --store does ("" or
// "sqlite": the SQLite file in dataDir; a postgres:// URL), read-only.
func Open(ctx context.Context, spec, dataDir string) (Stored, error) {
	kind, err := storeopen.Kind(spec)
	if err != nil {
		return nil, err
	}
	if kind == "sqlite" {
		return OpenSQLite(dataDir)
	}
	return OpenPostgres(ctx, spec)
}

// OpenPostgres connects to the collector's PostgreSQL database with
// every transaction read-only.
func OpenPostgres(ctx context.Context, dsn string) (Stored, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", storeopen.Describe(dsn), errors.New(postgres.Redact(err.Error(), dsn)))
	}
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store %s: %s", storeopen.Describe(dsn), postgres.Redact(err.Error(), dsn))
	}
	return pgStored{conn}, nil
}

type pgStored struct{ conn *pgx.Conn }

func (s pgStored) Sequences(ctx context.Context, deviceID string, epoch uint64) ([]uint64, error) {
	rows, err := s.conn.Query(ctx, `SELECT sequence FROM reports WHERE device_id = $1 AND epoch = $2 ORDER BY sequence`, deviceID, int64(epoch))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (uint64, error) {
		var n int64
		err := r.Scan(&n)
		return uint64(n), err
	})
}

func (s pgStored) ChainGaps(ctx context.Context, deviceID string) ([]store.ChainGap, error) {
	return pgRows(ctx, s.conn, chainGapsQuery, deviceID, scanGap)
}

func (s pgStored) ChainForks(ctx context.Context, deviceID string) ([]store.ChainFork, error) {
	return pgRows(ctx, s.conn, chainForksQuery, deviceID, scanFork)
}

func pgRows[T any](ctx context.Context, conn *pgx.Conn, query, deviceID string, scan func(string, rowScanner) (T, error)) ([]T, error) {
	rows, err := conn.Query(ctx, query, deviceID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(deviceID, r) })
}

func (s pgStored) Close() error { return s.conn.Close(context.Background()) }

// Verification compares what the devices of a run had acknowledged with
// what the store holds. Every acknowledged report must be stored exactly
// once; the one report a device may have in doubt (its last attempt
// failed in a way that may have stored it) may be stored or not; nothing
// else may be. And no chain gap or fork may be recorded in the devices'
// epochs: a device sends its reports in order, delivers each until it is
// acknowledged and seals each once, so its chain has no hole and no
// branch, whatever failed on the way.
type Verification struct {
	Devices int `json:"devices"`
	// Acknowledged counts acknowledged (device, epoch, sequence), Stored
	// the reports the store holds for these devices and epochs.
	Acknowledged int64 `json:"acknowledged"`
	Stored       int64 `json:"stored"`
	// Missing: acknowledged, not stored. Duplicated: stored more than
	// once. Unexpected: stored, never acknowledged nor in doubt.
	Missing    int64 `json:"missing"`
	Duplicated int64 `json:"duplicated"`
	Unexpected int64 `json:"unexpected"`
	// InDoubt counts stored reports whose acknowledgement was lost
	// (allowed: the agent delivers them again and gets a duplicate's
	// acknowledgement).
	InDoubt int64 `json:"in_doubt_stored"`
	// Gaps and Forks count what the store recorded in the devices'
	// chains (store.EvidenceStore's ChainGaps and ChainForks) in their
	// epochs.
	Gaps  int64 `json:"chain_gaps"`
	Forks int64 `json:"chain_forks"`
	// OK is true when nothing is missing, duplicated or unexpected and
	// the run's count of acknowledgements agrees.
	OK       bool     `json:"ok"`
	Problems []string `json:"problems,omitempty"`
}

const maxProblems = 10

// Verify checks the store against run, a run of devs against the
// collector.
func Verify(ctx context.Context, st Stored, devs []*Device, run *RunResult) (Verification, error) {
	v := Verification{Devices: len(devs)}
	problem := func(format string, args ...any) {
		if len(v.Problems) < maxProblems {
			v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
		}
	}
	if len(run.devices) != len(devs) {
		return v, fmt.Errorf("verify: run of %d devices, %d given", len(run.devices), len(devs))
	}
	for i, d := range devs {
		r := run.devices[i]
		seqs, err := st.Sequences(ctx, d.ID, d.Epoch)
		if err != nil {
			return v, fmt.Errorf("verify device %s: %w", d.ID, err)
		}
		if err := v.chains(ctx, st, d, problem); err != nil {
			return v, err
		}
		v.Acknowledged += int64(r.acked)
		v.Stored += int64(len(seqs))
		seen := make(map[uint64]int, len(seqs))
		for _, s := range seqs {
			seen[s]++
		}
		for s := uint64(1); s <= r.acked; s++ {
			if seen[s] == 0 {
				v.Missing++
				problem("device %s epoch %d: acknowledged sequence %d is not stored", d.ID, d.Epoch, s)
			}
		}
		for s, n := range seen {
			if n > 1 {
				v.Duplicated += int64(n - 1)
				problem("device %s epoch %d: sequence %d stored %d times", d.ID, d.Epoch, s, n)
			}
			switch {
			case s >= 1 && s <= r.acked:
			case s == r.acked+1 && r.unsure:
				v.InDoubt++
			default:
				v.Unexpected++
				problem("device %s epoch %d: sequence %d is stored but was not acknowledged (last acknowledged %d)", d.ID, d.Epoch, s, r.acked)
			}
		}
	}
	if acked := run.Acknowledged + run.Warmup; v.Acknowledged != acked {
		problem("the run counted %d acknowledgements, the devices %d", acked, v.Acknowledged)
	}
	v.OK = v.Missing == 0 && v.Duplicated == 0 && v.Unexpected == 0 && v.Gaps == 0 && v.Forks == 0 &&
		v.Acknowledged == run.Acknowledged+run.Warmup
	return v, nil
}

// chains counts the gaps and forks recorded for d in its epoch.
func (v *Verification) chains(ctx context.Context, st Stored, d *Device, problem func(string, ...any)) error {
	gaps, err := st.ChainGaps(ctx, d.ID)
	if err != nil {
		return fmt.Errorf("verify device %s: %w", d.ID, err)
	}
	for _, g := range gaps {
		if g.Epoch == d.Epoch {
			v.Gaps++
			problem("device %s epoch %d: chain gap recorded after sequence %d, before %d (%d dropped)", d.ID, d.Epoch, g.After, g.Before, g.Dropped)
		}
	}
	forks, err := st.ChainForks(ctx, d.ID)
	if err != nil {
		return fmt.Errorf("verify device %s: %w", d.ID, err)
	}
	for _, f := range forks {
		if f.Epoch == d.Epoch {
			v.Forks++
			problem("device %s epoch %d: chain fork recorded at sequence %d against sequence %d", d.ID, d.Epoch, f.Sequence, f.OtherSequence)
		}
	}
	return nil
}
