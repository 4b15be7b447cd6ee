package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/wardhq/ward/agent/outbox"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// LedgerFile is the Ledger's file in the agent's state directory.
const LedgerFile = "connectivity.json"

// ledgerFormat is the version of the Ledger's file.
const ledgerFormat = 1

// Ledger is what the agent remembers about its connection across rounds
// and restarts: the last collecting round, the last delivery attempt,
// when each endpoint was last reached, and the connected time each failing
// connected-grace rule has had since it started failing.
type Ledger struct {
	Format int `json:"format"`
	// LastRound is when the last collecting round ran.
	LastRound time.Time `json:"last_round,omitzero"`
	// Delivery is the last attempt to reach the collector (a delivery or
	// a policy fetch).
	Delivery Attempt `json:"delivery,omitzero"`
	// CollectorAt and UpdateSourceAt are when each was last reached.
	CollectorAt    time.Time `json:"collector_at,omitzero"`
	UpdateSourceAt time.Time `json:"update_source_at,omitzero"`
	// Rules holds, per failing connected-grace rule, the connected time
	// counted since it started failing.
	Rules map[string]Grace `json:"rules,omitempty"`
}

// Attempt is one attempt to reach the collector.
type Attempt struct {
	At      time.Time `json:"at"`
	Reached bool      `json:"reached"`
}

// Grace is the connected time one rule has had since Since, its
// failing_since.
type Grace struct {
	Since time.Time     `json:"since"`
	Used  time.Duration `json:"used_ns"`
}

// LoadLedger reads the ledger at path. A missing file is an empty ledger; so is
// one that cannot be read or parsed, which is logged: connected time then
// counts again from zero, and the agent goes on.
func LoadLedger(path string, log *slog.Logger) *Ledger {
	l := &Ledger{Format: ledgerFormat}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return l
	}
	if err == nil {
		var got Ledger
		if err = json.Unmarshal(data, &got); err == nil && got.Format != ledgerFormat {
			err = fmt.Errorf("format %d, want %d", got.Format, ledgerFormat)
		}
		if err == nil {
			for id, g := range got.Rules {
				if g.Used < 0 || g.Since.IsZero() {
					delete(got.Rules, id)
				}
			}
			return &got
		}
	}
	log.Warn("connectivity record unreadable; connected time counts again from zero", "file", path, "err", err)
	return l
}

// Save writes the ledger to path atomically.
func (l *Ledger) Save(path string) error {
	l.Format = ledgerFormat
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return outbox.WriteFile(path, data, 0o600)
}

// Delivered records an attempt at the collector at time at; reached means
// the collector answered (even with a refusal).
func (l *Ledger) Delivered(at time.Time, reached bool) {
	l.Delivery = Attempt{At: at.UTC(), Reached: reached}
	if reached {
		l.CollectorAt = at.UTC()
	}
}

// CollectorReach is whether the collector was reached since the last
// collecting round: by the latest attempt since then, NOT_PROBED if none
// was made.
func (l *Ledger) CollectorReach() wardv1.Reach {
	switch {
	case l.Delivery.At.IsZero() || !l.Delivery.At.After(l.LastRound):
		return wardv1.Reach_REACH_NOT_PROBED
	case l.Delivery.Reached:
		return wardv1.Reach_REACH_REACHED
	}
	return wardv1.Reach_REACH_UNREACHABLE
}

// Round is what a round passes to policies.Evaluate (Options.GraceUsed and
// Options.Paused).
type Round struct {
	Used   map[string]time.Duration
	Paused map[string]time.Time
}

// Begin accounts for the time since the last collecting round, at now,
// and returns each connected-grace rule's used time and pause. conn is
// what this round found; since holds when each rule was first seen
// failing, before this round. The time since the last round counts for a
// rule that was failing when this round finds its endpoint reached
// (Endpoint), at most maxGap of it (twice the round interval: a laptop
// asleep for a week gains nothing from one connected round). A rule whose
// endpoint this round found unreachable is paused since the endpoint was
// last reached.
func (l *Ledger) Begin(pol *policies.Policy, since map[string]time.Time, now time.Time, maxGap time.Duration, conn *wardv1.Connectivity) Round {
	now = now.UTC()
	var gap time.Duration
	if !l.LastRound.IsZero() {
		gap = min(max(now.Sub(l.LastRound), 0), maxGap)
	}
	if conn.GetUpdateSource() == wardv1.Reach_REACH_REACHED {
		l.UpdateSourceAt = now
	}
	round := Round{Used: map[string]time.Duration{}, Paused: map[string]time.Time{}}
	for i := range pol.Rules {
		r := &pol.Rules[i]
		if !r.GraceConnected {
			continue
		}
		s, failing := since[r.ID]
		var used time.Duration
		if g, ok := l.Rules[r.ID]; ok && failing && g.Since.Equal(s) {
			used = g.Used
		}
		reach, last := l.endpoint(r.Family, conn)
		if failing && reach == wardv1.Reach_REACH_REACHED {
			used += gap
		}
		round.Used[r.ID] = used
		if reach == wardv1.Reach_REACH_UNREACHABLE {
			round.Paused[r.ID] = last
		}
	}
	l.LastRound = now
	return round
}

// endpoint is the reach that counts for a rule of family, and when that
// endpoint was last reached: the update source for patch rules when it
// was probed, the collector otherwise (docs/connectivity.md).
func (l *Ledger) endpoint(family string, conn *wardv1.Connectivity) (wardv1.Reach, time.Time) {
	if family == policies.FamilyPatchLevel && conn.GetUpdateSource() != wardv1.Reach_REACH_NOT_PROBED &&
		conn.GetUpdateSource() != wardv1.Reach_REACH_UNSPECIFIED {
		return conn.GetUpdateSource(), l.UpdateSourceAt
	}
	return conn.GetCollector(), l.CollectorAt
}

// End keeps, after the evaluation, the used time of each connected-grace
// rule that fails, or is UNKNOWN while it was failing (not knowing is no
// fix), and forgets the others.
func (l *Ledger) End(results []policies.Result, round Round) {
	next := map[string]Grace{}
	for _, r := range results {
		if !r.GraceConnected {
			continue
		}
		switch r.Status {
		case policies.StatusFail:
			if r.FailingSince != nil {
				next[r.RuleID] = Grace{Since: r.FailingSince.UTC(), Used: r.GraceUsed}
			}
		case policies.StatusUnknown:
			if g, ok := l.Rules[r.RuleID]; ok {
				next[r.RuleID] = Grace{Since: g.Since, Used: max(round.Used[r.RuleID], g.Used)}
			}
		}
	}
	l.Rules = next
}
