package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/wardhq/ward/collector/store"
)

// BackupInfo describes a database copy made by Backup or checked by
// CheckCopy.
type BackupInfo struct {
	// SchemaVersion is the newest migration applied in the copy.
	SchemaVersion int
	// Devices and Reports count the fleet in the copy, for the operator
	// to compare with what they expect.
	Devices, Reports int64
}

// Backup writes a consistent copy of the database at path to dest, which
// must not exist, with VACUUM INTO: one read transaction on the source, so
// the copy is the database as of one commit while a serving collector goes
// on reading and writing (WAL mode lets it). The source is never
// migrated and no pragma is set on it: a backup taken by a newer
// ward-collector leaves a database an older serve runs on as it was. It is
// opened read-write all the same, because a read-only connection to a WAL
// database leaves -wal and -shm files behind (it cannot remove them on
// close), which a collector would then find owned by whoever ran the
// backup. The copy is fsynced and passes CheckCopy before Backup returns.
func Backup(ctx context.Context, path, dest string) (BackupInfo, error) {
	if _, err := os.Stat(path); err != nil {
		return BackupInfo{}, fmt.Errorf("database %s: %w", path, err)
	}
	if _, err := os.Lstat(dest); err == nil {
		return BackupInfo{}, fmt.Errorf("backup %s: %w", dest, os.ErrExist)
	}
	// No pragmas beyond the busy timeout, which a writer's lock needs.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dest); err != nil {
		os.Remove(dest)
		return BackupInfo{}, fmt.Errorf("copy %s to %s: %w", path, dest, classify(err))
	}
	if err := syncFile(dest); err != nil {
		return BackupInfo{}, err
	}
	info, err := CheckCopy(ctx, dest)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("the copy just made: %w", err)
	}
	return info, nil
}

// CheckCopy checks a database copy before it is trusted: PRAGMA
// integrity_check (every page and every index against its table, which
// quick_check skips) answers "ok", and it holds the collector's schema at
// a version this build knows. It opens the file read-only; a copy that
// fails is reported with store.ErrCorrupt, store.ErrEmpty or an error
// naming the newer schema.
func CheckCopy(ctx context.Context, path string) (BackupInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return BackupInfo{}, err
	}
	if fi.Size() == 0 {
		return BackupInfo{}, fmt.Errorf("database %s is empty (0 bytes): %w", path, store.ErrEmpty)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check(5)`)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("database %s: %w", path, classify(err))
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return BackupInfo{}, fmt.Errorf("database %s: %w", path, classify(err))
		}
		problems = append(problems, s)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return BackupInfo{}, fmt.Errorf("database %s: %w", path, classify(err))
	}
	if len(problems) != 1 || problems[0] != "ok" {
		return BackupInfo{}, fmt.Errorf("database %s fails its integrity check (%s): %w", path, strings.Join(problems, "; "), store.ErrCorrupt)
	}
	var info BackupInfo
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return BackupInfo{}, fmt.Errorf("database %s: %w", path, classify(err))
	}
	if n == 0 {
		return BackupInfo{}, fmt.Errorf("database %s has none of the collector's tables: %w", path, store.ErrEmpty)
	}
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&info.SchemaVersion); err != nil {
		return BackupInfo{}, fmt.Errorf("database %s: %w", path, classify(err))
	}
	if info.SchemaVersion > SchemaVersion() {
		return info, fmt.Errorf("database %s has schema version %d, newer than this collector's %d: %w", path, info.SchemaVersion, SchemaVersion(), ErrNewerSchema)
	}
	if info.SchemaVersion >= 1 {
		if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM devices), (SELECT count(*) FROM reports)`).Scan(&info.Devices, &info.Reports); err != nil {
			return BackupInfo{}, fmt.Errorf("database %s: %w", path, classify(err))
		}
	}
	return info, nil
}

// ErrNewerSchema means a database was migrated by a newer collector than
// this one: restore it with that version (or newer), never with this one.
var ErrNewerSchema = errors.New("database from a newer collector")

// syncFile fsyncs the file at path.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}
