// Package batch is group commit: one writer per store that runs the
// write jobs queued while it was busy in one transaction, so many
// concurrent writers share one commit (one fsync) and none of them
// waits for a database lock.
//
// A job is applied in isolation inside the batch's transaction (the
// backend runs each under its own SAVEPOINT, or validates before
// applying), so one job's error fails that job alone. Do returns only
// after the transaction that holds the job committed, or with an error:
// a nil error means committed, and an error means the job is not (or,
// when the commit itself failed in a way the backend cannot tell apart,
// may not be) in the database, so callers whose writes are idempotent
// retry.
package batch

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by Do once the writer is closed.
var ErrClosed = errors.New("store writer is closed")

// Commit runs jobs, in order, in one transaction and commits it. errs[i]
// is job i's own error (nil: applied); err is the batch's (nothing
// committed, every job fails with it). Commit is called from one
// goroutine at a time.
type Commit[J any] func(ctx context.Context, jobs []J) (errs []error, err error)

// Options bound a batch. Zero fields take the defaults.
type Options struct {
	// MaxJobs bounds the jobs of one transaction (default 256).
	MaxJobs int
	// MaxBytes bounds the sum of the sizes callers give Do for one
	// transaction (default 8 MiB). A job larger than it runs alone.
	MaxBytes int
	// Queue is how many jobs may wait for the writer before Do blocks
	// (default 4 × MaxJobs).
	Queue int
}

// Writer is the single writer of one store.
type Writer[J any] struct {
	commit Commit[J]
	opts   Options
	ch     chan *request[J]
	ctx    context.Context // the writer's lifetime: given to Commit
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.RWMutex // held for reading while sending on ch
	closed bool

	batches, jobs atomic.Int64 // committed or failed, for Stats
}

// Stats counts the batches the writer has run and the jobs in them.
type Stats struct {
	Batches, Jobs int64
}

// Stats returns the writer's counts so far.
func (w *Writer[J]) Stats() Stats {
	return Stats{Batches: w.batches.Load(), Jobs: w.jobs.Load()}
}

// request states: queued, taken by the writer, abandoned by its caller.
const (
	queued int32 = iota
	taken
	abandoned
)

type request[J any] struct {
	job   J
	size  int
	state atomic.Int32
	err   chan error // buffered: the writer never blocks on it
}

// New starts a writer that commits through commit. Close stops it.
func New[J any](commit Commit[J], opts Options) *Writer[J] {
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = 256
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 8 << 20
	}
	if opts.Queue <= 0 {
		opts.Queue = 4 * opts.MaxJobs
	}
	w := &Writer[J]{commit: commit, opts: opts, ch: make(chan *request[J], opts.Queue), done: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.run()
	return w
}

// Do queues job (of about size bytes, for the batch bound) and waits for
// the transaction that holds it. A caller whose ctx ends while its job
// is still queued gets ctx's error and the job is never run; once the
// writer has taken it, Do waits for the commit whatever ctx does, so an
// error always means "not written".
func (w *Writer[J]) Do(ctx context.Context, job J, size int) error {
	r := &request[J]{job: job, size: size, err: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	select {
	case w.ch <- r:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-r.err:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(queued, abandoned) {
			return ctx.Err()
		}
		return <-r.err
	}
}

// Queued is how many jobs wait for the writer (not counting the batch
// it is committing), for metrics and tests.
func (w *Writer[J]) Queued() int { return len(w.ch) }

// Close runs the jobs already queued, then stops the writer. Do returns
// ErrClosed afterwards.
func (w *Writer[J]) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closed = true
	close(w.ch)
	w.mu.Unlock()
	<-w.done
	w.cancel()
}

// run is the writer: it takes what is queued when it is free, without
// waiting for company, up to the bounds, and commits it.
func (w *Writer[J]) run() {
	defer close(w.done)
	var batch []*request[J]
	for {
		r, ok := <-w.ch
		if !ok {
			return
		}
		batch = batch[:0]
		bytes := 0
		add := func(r *request[J]) {
			if r.state.CompareAndSwap(queued, taken) {
				batch = append(batch, r)
				bytes += r.size
			}
		}
		add(r)
	fill:
		for len(batch) < w.opts.MaxJobs && bytes < w.opts.MaxBytes {
			select {
			case r, ok := <-w.ch:
				if !ok {
					break fill
				}
				add(r)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			continue
		}
		w.flush(batch)
	}
}

// flush commits one batch and answers its callers.
func (w *Writer[J]) flush(batch []*request[J]) {
	jobs := make([]J, len(batch))
	for i, r := range batch {
		jobs[i] = r.job
	}
	errs, err := w.safeCommit(jobs)
	w.batches.Add(1)
	w.jobs.Add(int64(len(jobs)))
	for i, r := range batch {
		switch {
		case err != nil:
			r.err <- err
		case i < len(errs):
			r.err <- errs[i]
		default:
			r.err <- nil
		}
	}
}

// safeCommit is commit with a panic turned into the batch's error, so
// the writer keeps serving.
func (w *Writer[J]) safeCommit(jobs []J) (errs []error, err error) {
	defer func() {
		if p := recover(); p != nil {
			errs, err = nil, fmt.Errorf("store writer: panic: %v\n%s", p, debug.Stack())
		}
	}()
	errs, err = w.commit(w.ctx, jobs)
	if err == nil && len(errs) != len(jobs) {
		return nil, fmt.Errorf("store writer: commit returned %d outcomes for %d jobs", len(errs), len(jobs))
	}
	return errs, err
}
