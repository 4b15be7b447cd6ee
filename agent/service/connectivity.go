package service

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"connectrpc.com/connect"

	"github.com/wardhq/ward/agent/connectivity"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// SettingsFile, in the state directory, holds the agent's own settings,
// which IT may write (docs/connectivity.md):
//
//	{"update_probe": false}
//
// turns the update-source probe off. A missing file means the defaults;
// an unreadable one is logged and means the defaults too.
const SettingsFile = "agent.json"

// settings are the agent's own settings.
type settings struct {
	// UpdateProbe, false, turns the update-source probe off.
	UpdateProbe *bool `json:"update_probe,omitempty"`
}

func (st settings) probeOn() bool { return st.UpdateProbe == nil || *st.UpdateProbe }

func loadSettings(dir string, log *slog.Logger) settings {
	var st settings
	data, err := os.ReadFile(filepath.Join(dir, SettingsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st
	}
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil {
		log.Warn("agent settings unreadable; using the defaults", "file", SettingsFile, "err", err)
		return settings{}
	}
	return st
}

// probe is this round's connectivity as far as the update source goes:
// probed unless the policy is discreet or the probe is turned off.
func (s *Service) probe(ctx context.Context, pol *policies.Policy) *wardv1.Connectivity {
	conn := &wardv1.Connectivity{UpdateSource: wardv1.Reach_REACH_NOT_PROBED}
	if pol.Discreet || s.cfg.NoUpdateProbe || s.cfg.Prober == nil {
		return conn
	}
	host, err := s.cfg.Source.Host(ctx)
	if err != nil {
		return conn
	}
	target := connectivity.UpdateSource(ctx, s.cfg.Source, host.OS)
	conn.UpdateSource = connectivity.Probe(ctx, s.cfg.Prober, target)
	if conn.UpdateSource != wardv1.Reach_REACH_NOT_PROBED {
		conn.UpdateSourceName = target.Name
	}
	s.log.Debug("update source probed", "update_source", target.Name, "reach", conn.UpdateSource.String())
	return conn
}

// reached records an attempt at the collector at time at, which ended
// with err; answered says the collector answered it (a report delivered, a
// policy fetched). An answer, a refusal included, is reached; a connection
// that failed is not; an attempt that never called the collector (nothing
// queued, a local error) is no evidence either way.
func (s *Service) reached(at time.Time, answered bool, err error) {
	var ce *connect.Error
	var ok bool
	switch {
	case answered:
		ok = true
	case err == nil:
		return
	case unreachable(err):
		ok = false
	case errors.As(err, &ce):
		ok = true
	default:
		return
	}
	s.ledgerMu.Lock()
	defer s.ledgerMu.Unlock()
	s.ledger.Delivered(at, ok)
	s.saveLedger()
}

// saveLedger writes the ledger; ledgerMu is held.
func (s *Service) saveLedger() {
	if err := s.ledger.Save(filepath.Join(s.cfg.StateDir, LedgerFile)); err != nil {
		s.log.Warn("cannot record connectivity", "err", err)
	}
}
