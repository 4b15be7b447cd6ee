package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// qActiveWaivers reads the waivers of a device and its group
// (waivers_device, migration 9).
const qActiveWaivers = `SELECT id, device_id, grp, rule_id, reason, created_by, created_at, expires_at, revoked_at FROM waivers
	WHERE ((device_id = ? AND device_id != '') OR (device_id = '' AND grp = ?))
	  AND created_at <= ? AND expires_at > ? AND (revoked_at IS NULL OR revoked_at > ?)
	ORDER BY rule_id, expires_at, reason, id`

// ActiveWaivers implements store.WaiverSource: the waivers active at now
// for the device, its own and its group's, by rule then expiry.
func (s *Store) ActiveWaivers(ctx context.Context, deviceID, group string, now time.Time) ([]store.Waiver, error) {
	t := nanos(now)
	rows, err := s.query(ctx, qActiveWaivers, deviceID, group, t, t, t)
	if err != nil {
		return nil, fmt.Errorf("active waivers: %w", err)
	}
	defer rows.Close()
	var out []store.Waiver
	for rows.Next() {
		var w store.Waiver
		var created, expires int64
		var revoked sql.NullInt64
		if err := rows.Scan(&w.ID, &w.DeviceID, &w.Group, &w.RuleID, &w.Reason, &w.CreatedBy, &created, &expires, &revoked); err != nil {
			return nil, fmt.Errorf("active waivers: %w", err)
		}
		w.CreatedAt, w.ExpiresAt, w.RevokedAt = fromNanos(created), fromNanos(expires), fromNull(revoked)
		out = append(out, w)
	}
	return out, rows.Err()
}
