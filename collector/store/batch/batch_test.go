package batch

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
)

// TestConcurrentJobsShareCommits runs 200 jobs from 200 goroutines
// against a commit that blocks until released, so the jobs queue behind
// the first batch and must share later ones.
func TestConcurrentJobsShareCommits(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	applied := map[int]bool{}
	release := make(chan struct{})
	firstSize := 0
	w := New(func(ctx context.Context, jobs []int) ([]error, error) {
		mu.Lock()
		wait := firstSize == 0
		if wait {
			firstSize = len(jobs)
		}
		mu.Unlock()
		if wait {
			<-release
		}
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(jobs))
		errs := make([]error, len(jobs))
		for i, j := range jobs {
			if j%10 == 7 {
				errs[i] = errors.New("seven")
				continue
			}
			applied[j] = true
		}
		return errs, nil
	}, Options{MaxJobs: 50})
	defer w.Close()
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range 200 {
		wg.Go(func() { errs[i] = w.Do(context.Background(), i, 1) })
	}
	// Let all the others queue behind the blocked first batch.
	for {
		mu.Lock()
		n := firstSize
		mu.Unlock()
		if n > 0 && n+len(w.ch) == 200 {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if (i%10 == 7) != (err != nil) {
			t.Errorf("job %d: err %v", i, err)
		}
		if (err == nil) != applied[i] {
			t.Errorf("job %d: err %v but applied %v", i, err, applied[i])
		}
	}
	total := 0
	for _, n := range sizes {
		if n > 50 {
			t.Errorf("a batch of %d jobs; the bound is 50", n)
		}
		total += n
	}
	if total != 200 || len(sizes) > 10 {
		t.Errorf("batches %v: want 200 jobs in at most 10 batches", sizes)
	}
}

func TestBatchErrorFailsEveryJob(t *testing.T) {
	boom := errors.New("disk on fire")
	w := New(func(ctx context.Context, jobs []string) ([]error, error) { return nil, boom }, Options{})
	defer w.Close()
	if err := w.Do(context.Background(), "a", 1); !errors.Is(err, boom) {
		t.Fatalf("Do: %v, want %v", err, boom)
	}
}

func TestPanicFailsTheBatchAndTheWriterGoesOn(t *testing.T) {
	w := New(func(ctx context.Context, jobs []string) ([]error, error) {
		if jobs[0] == "panic" {
			panic("oops")
		}
		return make([]error, len(jobs)), nil
	}, Options{})
	defer w.Close()
	if err := w.Do(context.Background(), "panic", 1); err == nil {
		t.Fatal("a panicking commit returned no error")
	}
	if err := w.Do(context.Background(), "fine", 1); err != nil {
		t.Fatalf("after a panic: %v", err)
	}
}

// TestCancelledWhileQueuedIsNeverRun: a caller whose context ends before
// the writer takes its job gets the context's error, and the job is not
// committed.
func TestCancelledWhileQueuedIsNeverRun(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var ran []string
	w := New(func(ctx context.Context, jobs []string) ([]error, error) {
		mu.Lock()
		ran = append(ran, jobs...)
		mu.Unlock()
		if jobs[0] == "block" {
			<-release
		}
		return make([]error, len(jobs)), nil
	}, Options{})
	defer w.Close()
	blocked := make(chan error)
	go func() { blocked <- w.Do(context.Background(), "block", 1) }()
	for {
		mu.Lock()
		n := len(ran)
		mu.Unlock()
		if n == 1 {
			break
		}
		runtime.Gosched()
	}
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error)
	go func() { gone <- w.Do(ctx, "cancelled", 1) }()
	for len(w.ch) == 0 {
		runtime.Gosched()
	}
	cancel()
	if err := <-gone; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Do: %v", err)
	}
	close(release)
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	if err := w.Do(context.Background(), "after", 1); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, j := range ran {
		if j == "cancelled" {
			t.Fatalf("the cancelled job ran: %v", ran)
		}
	}
}

func TestCloseRunsQueuedThenRefuses(t *testing.T) {
	w := New(func(ctx context.Context, jobs []int) ([]error, error) { return make([]error, len(jobs)), nil }, Options{})
	if err := w.Do(context.Background(), 1, 1); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := w.Do(context.Background(), 2, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
	w.Close() // twice is fine
}

func TestMaxBytesSplitsBatches(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	first := true
	w := New(func(ctx context.Context, jobs []int) ([]error, error) {
		mu.Lock()
		wait := first
		first = false
		sizes = append(sizes, len(jobs))
		mu.Unlock()
		if wait {
			<-release
		}
		return make([]error, len(jobs)), nil
	}, Options{MaxBytes: 300})
	defer w.Close()
	var wg sync.WaitGroup
	wg.Go(func() { w.Do(context.Background(), 0, 100) })
	for {
		mu.Lock()
		n := len(sizes)
		mu.Unlock()
		if n == 1 {
			break
		}
		runtime.Gosched()
	}
	for i := 1; i <= 9; i++ {
		wg.Go(func() { w.Do(context.Background(), i, 100) })
	}
	for len(w.ch) < 9 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 4 || sizes[1] != 3 || sizes[2] != 3 || sizes[3] != 3 {
		t.Fatalf("batches %v: want [1 3 3 3] (300 bytes of 100-byte jobs each)", sizes)
	}
}

func TestStatsCountBatchesAndJobs(t *testing.T) {
	w := New(func(ctx context.Context, jobs []int) ([]error, error) { return make([]error, len(jobs)), nil }, Options{})
	defer w.Close()
	for i := range 3 {
		if err := w.Do(context.Background(), i, 1); err != nil {
			t.Fatal(err)
		}
	}
	if st := w.Stats(); st.Batches != 3 || st.Jobs != 3 {
		t.Fatalf("stats %+v after three lone jobs, want 3 batches of 1", st)
	}
}
