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
	"github.com/wardhq/ward/collector/store/postgres"
	"github.com/wardhq/ward/collector/store/storeopen"
)

// Stored lists what a store holds for a device in an epoch.
type Stored interface {
	// Sequences returns the sequences stored for the device in epoch,
	// one per stored report (a report stored twice appears twice).
	Sequences(ctx context.Context, deviceID string, epoch uint64) ([]uint64, error)
	Close() error
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

func (s pgStored) Close() error { return s.conn.Close(context.Background()) }

// Verification compares what the devices of a run had acknowledged with
// what the store holds. Every acknowledged report must be stored exactly
// once; the one report a device may have in doubt (its last attempt
// failed in a way that may have stored it) may be stored or not; nothing
// else may be.
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
	v.OK = v.Missing == 0 && v.Duplicated == 0 && v.Unexpected == 0 && v.Acknowledged == run.Acknowledged+run.Warmup
	return v, nil
}
