package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/wardhq/ward/collector/store/aggregate"
	"github.com/wardhq/ward/collector/store/batch"
)

// Writes: every write of the store is a job of one writer (group
// commit, collector/store/batch) on the store's one write connection.
// Jobs queued while the writer was busy share one transaction and one
// fsync; each runs under its own SAVEPOINT, so one job's error rolls
// back that job alone. Nothing in this process waits for SQLite's write
// lock, so it never answers SQLITE_BUSY (another process, such as an
// admin command, is waited for up to busy_timeout). Reads go to a
// bounded pool of other connections.

// job is one write: fn runs inside the batch's transaction with the
// writer's context (never a caller's: cancelling a statement inside a
// transaction would make SQLite roll the whole batch back).
type job func(ctx context.Context, tx *sql.Tx) error

// Bounds of the store's pools and batches.
const (
	// DefaultReaders bounds the read pool.
	DefaultReaders = 8
	// maxBatchJobs and maxBatchBytes bound one write transaction.
	maxBatchJobs  = 256
	maxBatchBytes = 8 << 20
	// DefaultOptimizeEvery is how often PRAGMA optimize runs.
	DefaultOptimizeEvery = time.Hour
)

// tx runs fn as one job of the writer and returns once its batch
// committed (nil) or with the error that kept it out of the database.
func (s *Store) tx(ctx context.Context, fn job) error {
	return s.write(ctx, 0, fn)
}

// write is tx for a job of about size bytes (its share of the batch
// bound).
func (s *Store) write(ctx context.Context, size int, fn job) error {
	return s.writer.Do(ctx, fn, size)
}

// exec runs one write statement as a job and returns the rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// commit is the writer's batch.Commit: one IMMEDIATE transaction on the
// write connection, a SAVEPOINT per job when there are several. The
// aggregate counters the jobs change are written once, after the last
// job (aggregates.go): a job that fails adds nothing to them.
func (s *Store) commit(ctx context.Context, jobs []job) ([]error, error) {
	errs := make([]error, len(jobs))
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, classify(err)
	}
	p := ptx{tx, s}
	agg := aggregate.NewDelta()
	ok := 0
	if len(jobs) == 1 {
		if errs[0] = runJob(withAggregates(ctx, agg), tx, jobs[0]); errs[0] != nil {
			tx.Rollback()
			return errs, nil
		}
		ok++
	} else {
		for i, j := range jobs {
			if _, err := p.ExecContext(ctx, qSavepoint); err != nil {
				tx.Rollback()
				return nil, classify(err)
			}
			jobAgg := aggregate.NewDelta()
			if errs[i] = runJob(withAggregates(ctx, jobAgg), tx, j); errs[i] != nil {
				// A failed rollback to the savepoint means SQLite already
				// rolled the transaction back (a full disk, an I/O
				// error): the whole batch fails.
				if _, err := p.ExecContext(ctx, qRollbackTo); err != nil {
					tx.Rollback()
					return nil, fmt.Errorf("%w (after a job failed: %w)", classify(err), errs[i])
				}
			}
			if _, err := p.ExecContext(ctx, qRelease); err != nil {
				tx.Rollback()
				return nil, classify(err)
			}
			if errs[i] == nil {
				agg.Merge(jobAgg)
				ok++
			}
		}
	}
	if ok == 0 {
		tx.Rollback()
		return errs, nil
	}
	if !agg.Empty() {
		if err := writeAggregates(ctx, p, agg); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("aggregates: %w", classify(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, classify(err)
	}
	return errs, nil
}

// The statements around each job of a batch.
const (
	qSavepoint  = `SAVEPOINT job`
	qRollbackTo = `ROLLBACK TO job`
	qRelease    = `RELEASE job`
)

// prepareHot prepares the statements of every report on the write
// connection, before the writer starts using it (a statement prepared
// on the connection inside a transaction would wait for itself).
func (s *Store) prepareHot(ctx context.Context) error {
	for _, q := range append(writerStatements[:len(writerStatements):len(writerStatements)], enrolWrites...) {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		s.stmts[q] = st
	}
	return nil
}

// stmt is q as prepared by prepareHot, for tx (one of the writer's), or
// nil.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	st, ok := s.stmts[q]
	if !ok {
		return nil
	}
	return tx.StmtContext(ctx, st)
}

// ptx is a writer's transaction whose hot statements (hotWrites) are
// prepared once, on the one write connection, and reused: they are
// parsed once, not once per report. Others run unprepared.
type ptx struct {
	*sql.Tx
	s *Store
}

// ExecContext is sql.Tx's, prepared.
func (t ptx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.s.stmt(ctx, t.Tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, q, args...)
}

// QueryContext is sql.Tx's, prepared.
func (t ptx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := t.s.stmt(ctx, t.Tx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, q, args...)
}

// QueryRowContext is sql.Tx's, prepared.
func (t ptx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := t.s.stmt(ctx, t.Tx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, q, args...)
}

// runJob runs one job, turning a panic into its error.
func runJob(ctx context.Context, tx *sql.Tx, j job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in store write: %v\n%s", p, debug.Stack())
		}
	}()
	return j(ctx, tx)
}

// startWriter opens the write connection and starts the writer.
func (s *Store) startWriter(w *sql.DB) {
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	s.w = w
	s.stmts = map[string]*sql.Stmt{}
	s.writer = batch.New(s.commit, batch.Options{MaxJobs: maxBatchJobs, MaxBytes: maxBatchBytes})
}

// closeStmts closes the prepared statements, once the writer is done.
func (s *Store) closeStmts() {
	for _, st := range s.stmts {
		st.Close()
	}
	s.reads.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
}

// readStmt is q prepared on the read pool (each connection prepares it
// once, when it first runs it), for the reads of every report.
func (s *Store) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.reads.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.reads.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// query is s.db.QueryContext, prepared.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.readStmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// queryRow is s.db.QueryRowContext, prepared when it can be (otherwise
// the unprepared query reports the error).
func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := s.readStmt(ctx, q)
	if err != nil {
		return s.db.QueryRowContext(ctx, q, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// optimize runs PRAGMA optimize on the write connection, which keeps
// the planner's statistics (sqlite_stat1) current; analysis_limit (set
// on every connection) bounds its work on a large database. The hot
// statements do not depend on it: they name their index (see
// TestHotStatementsStayOnTheirDevice).
func (s *Store) optimize(ctx context.Context, mask string) error {
	_, err := s.w.ExecContext(ctx, `PRAGMA optimize`+mask)
	return err
}

// optimizeLoop runs optimize every every until the store closes.
func (s *Store) optimizeLoop(every time.Duration) {
	defer close(s.optimized)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			// A failure only leaves the statistics as they were.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			s.optimize(ctx, "")
			cancel()
		}
	}
}
