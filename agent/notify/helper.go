package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wardhq/ward/agent/outbox"
)

// DefaultPoll is how often the helper reads the status when no prompt is
// due sooner.
const DefaultPoll = 5 * time.Minute

// Helper is the per-user notification helper.
type Helper struct {
	// Dir is the service's status directory.
	Dir string
	// MemoryFile keeps what was shown and the snooze.
	MemoryFile string
	Settings   Settings
	Notifier   Notifier
	// Poll bounds the wait between two reads of the status.
	Poll time.Duration
	Log  *slog.Logger
	// Now is the clock, in the user's time zone.
	Now func() time.Time
}

// Once reads the status, shows what is due and remembers it. The plan it
// returns says which notices the desktop really showed (Shown) and which
// it could not (Failed, with why); a notice that could not be shown is
// logged, not remembered as shown, and tried again next time.
func (h *Helper) Once(ctx context.Context) (Plan, error) {
	log := h.log()
	st, _, err := Read(ctx, h.Dir)
	if err != nil {
		return Plan{}, err
	}
	mem, err := LoadMemory(h.MemoryFile)
	if err != nil {
		log.Warn("notification memory unreadable; starting afresh", "err", err)
	}
	now := h.now()
	plan := Schedule(st, mem, h.Settings, now)
	var shown []Notice
	for _, n := range plan.Show {
		if err := h.Notifier.Show(ctx, forDesktop(n, h.Settings.Lang)); err != nil {
			log.Warn("cannot show notification", "err", err, "kind", n.Kind)
			plan.Failed = append(plan.Failed, Failure{Notice: n, Err: err})
			continue
		}
		log.Info("notification shown", "kind", n.Kind, "rules", len(n.Rules))
		shown = append(shown, n)
	}
	plan.Shown = shown
	if err := SaveMemory(h.MemoryFile, mem.Record(st, shown, now)); err != nil {
		return plan, err
	}
	return plan, nil
}

// Run calls Once until ctx is cancelled, waking when the plan says or
// after Poll, whichever is first; it returns nil then. A status that cannot
// be read (service not yet started) is logged and retried.
func (h *Helper) Run(ctx context.Context) error {
	poll := h.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	for {
		plan, err := h.Once(ctx)
		if err != nil && !errors.Is(err, ErrNoStatus) {
			h.log().Warn("cannot read status", "err", err)
		}
		wait := poll
		if !plan.Next.IsZero() {
			wait = min(wait, max(plan.Next.Sub(h.now()), time.Second))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (h *Helper) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

func (h *Helper) now() time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now()
}

// LoadMemory reads the helper's memory; a missing file is an empty memory.
func LoadMemory(path string) (Memory, error) {
	var m Memory
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return Memory{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// SaveMemory writes the helper's memory atomically, private to the user.
func SaveMemory(path string, m Memory) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return outbox.WriteFile(path, data, 0o600)
}
