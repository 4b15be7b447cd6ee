package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/wardhq/ward/collector/store"
)

var _ store.Connectivities = (*Store)(nil)

// DeviceConnectivity implements store.Connectivities.
func (s *Store) DeviceConnectivity(ctx context.Context, deviceID string) (store.DeviceConnectivity, bool, error) {
	var c store.DeviceConnectivity
	var coll, upd string
	var at int64
	var collAt, updAt sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT collector, update_source, update_source_name, at, collector_at, update_source_at
		FROM device_connectivity WHERE device_id = ?`, deviceID).Scan(&coll, &upd, &c.UpdateSourceName, &at, &collAt, &updAt)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("device connectivity: %w", err)
	}
	c.Collector, c.UpdateSource, c.At = store.Reach(coll), store.Reach(upd), fromNanos(at)
	c.CollectorAt, c.UpdateSourceAt = fromNull(collAt), fromNull(updAt)
	return c, true, nil
}

// PausedDeadlines implements store.Connectivities, from agg_failing
// (the failing states of non-revoked devices) and the paused rule
// states.
func (s *Store) PausedDeadlines(ctx context.Context, limit int) ([]store.Paused, int, error) {
	if limit <= 0 {
		limit = -1
	}
	const from = ` FROM rule_states r INDEXED BY rule_states_paused
		JOIN devices d ON d.id = r.device_id JOIN agg_failing f ON f.grp = d.grp AND f.rule_id = r.rule_id AND f.device_id = r.device_id
		LEFT JOIN device_connectivity c ON c.device_id = r.device_id
		WHERE r.deadline_paused = 1 AND r.collector = 'FAIL' AND r.grace_connected = 1`
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*)`+from).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("paused deadlines: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT r.device_id, d.hostname, d.grp, r.rule_id, r.title, f.since, r.grace_used,
		coalesce(d.states_at, r.updated_at), c.collector_at, c.update_source_at`+from+`
		ORDER BY f.since, r.device_id, r.rule_id LIMIT ?`, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("paused deadlines: %w", err)
	}
	defer rows.Close()
	var out []store.Paused
	for rows.Next() {
		var p store.Paused
		var since, used, at int64
		var collAt, updAt sql.NullInt64
		if err := rows.Scan(&p.DeviceID, &p.Hostname, &p.Group, &p.RuleID, &p.Title, &since, &used, &at, &collAt, &updAt); err != nil {
			return nil, 0, fmt.Errorf("paused deadlines: %w", err)
		}
		p.FailingSince, p.GraceUsed, p.ReportAt = fromNanos(since), time.Duration(used), fromNanos(at)
		p.NoConnectionSince = store.DeviceConnectivity{CollectorAt: fromNull(collAt), UpdateSourceAt: fromNull(updAt)}.LastConnected()
		out = append(out, p)
	}
	return out, total, rows.Err()
}
