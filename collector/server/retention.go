package server

import (
	"context"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// DefaultRetention is how long report history is kept by default.
const DefaultRetention = 400 * 24 * time.Hour

// pruneEvery is how often the background pruning runs.
const pruneEvery = time.Hour

// Prune deletes the reports older than the retention window, keeping
// what the state as of any time inside it needs (docs/durability.md,
// "Retention"). A store that cannot prune deletes nothing.
func (s *Server) Prune(ctx context.Context) (int, error) {
	p, ok := s.store.(store.Pruner)
	if !ok || s.cfg.Retention <= 0 {
		return 0, nil
	}
	return p.PruneReports(ctx, s.cfg.Now().Add(-s.cfg.Retention))
}

// pruneLoop prunes at start and then every pruneEvery until ctx is done.
func (s *Server) pruneLoop(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		start := time.Now()
		n, err := s.Prune(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			s.log.Error("prune reports", "err", err)
		case n > 0:
			s.log.Info("pruned reports", "deleted", n, "retention", s.cfg.Retention.String(), "took", time.Since(start).String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
