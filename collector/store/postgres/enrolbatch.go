package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/aggregate"
	"github.com/wardhq/ward/collector/store/batch"
)

// Enrolments of new devices are group-committed. Each one decrements its
// token's uses_left, and the token row stays locked until the commit: one
// transaction per enrolment would make every enrolment of a token (all
// of a fleet's, typically) wait for the previous one's commit, one fsync
// after another. The store's enrolment writer instead runs the new-device
// enrolments that queued while it was busy in one transaction: it locks
// their tokens (in hash order, so two collectors' batches cannot
// deadlock), decides each enrolment in order against the locked rows
// with the uses the batch already took, and writes them all, each token
// decremented once by its count, in one more round trip and one commit.
// A token's limits, expiry and revocation are thus decided under its lock
// exactly as before. Re-binds (a re-bind token or a proof) keep their own
// transaction: they lock a device as well.

// enrolJob is one new-device enrolment: its parameters and the
// certificate signed for p.NewID, and, once its batch committed, what it
// did.
type enrolJob struct {
	p      store.EnrollParams
	issued store.Issued
	out    store.Enrolment
}

// errNotNew: under the lock the token turned out to enrol otherwise
// than a new device (never for a token that is not a re-bind token);
// the enrolment takes the single path.
var errNotNew = errors.New("not a new device")

// queueEpoch queues the start of the device's next epoch into epoch
// (EnrollParams.StartEpoch).
func queueEpoch(w *pgx.Batch, p store.EnrollParams, deviceID string, epoch *uint64) {
	w.Queue(`UPDATE devices SET epoch = epoch + 1, epoch_started_at = $1 WHERE id = $2 RETURNING epoch`, nanos(p.Now), deviceID).
		QueryRow(func(r pgx.Row) error {
			var n int64
			if err := r.Scan(&n); err != nil {
				return err
			}
			*epoch = uint64(n)
			return nil
		})
}

// maxEnrolBatch bounds the enrolments of one transaction.
const maxEnrolBatch = 128

func (s *Store) startEnrolWriter() {
	s.enrols = batch.New(s.commitEnrolments, batch.Options{MaxJobs: maxEnrolBatch})
}

// enrolNew enrols a new device through the enrolment writer.
func (s *Store) enrolNew(ctx context.Context, p store.EnrollParams, issued store.Issued) (store.Enrolment, error) {
	j := &enrolJob{p: p, issued: issued}
	if err := s.enrols.Do(ctx, j, 0); err != nil {
		return store.Enrolment{}, err
	}
	return j.out, nil
}

// commitEnrolments is the enrolment writer's batch.Commit.
func (s *Store) commitEnrolments(ctx context.Context, jobs []*enrolJob) ([]error, error) {
	pl, err := s.pipeline(ctx)
	if err != nil {
		return nil, err
	}
	defer pl.close(ctx)
	var hashes []string
	views := map[string]*enrolView{}
	for _, j := range jobs {
		h := string(j.p.TokenHash)
		if views[h] == nil {
			views[h] = &enrolView{}
			hashes = append(hashes, h)
		}
	}
	slices.Sort(hashes)
	var lb pgx.Batch
	lb.Queue(`BEGIN`)
	for _, h := range hashes {
		v := views[h]
		lb.Queue(`SELECT id, hash, grp, uses_left, expires_at, revoked_at, rebind_device FROM tokens WHERE hash = $1 FOR UPDATE`, []byte(h)).
			Query(func(rows pgx.Rows) error {
				for rows.Next() {
					v.tokFound = true
					if err := rows.Scan(&v.tokID, &v.hash, &v.group, &v.usesLeft, &v.expires, &v.tokRevoked, &v.rebind); err != nil {
						return err
					}
				}
				return rows.Err()
			})
	}
	dups := make([][]string, len(jobs))
	for i, j := range jobs {
		if j.p.Info.MachineID == "" {
			continue
		}
		lb.Queue(`SELECT id FROM devices WHERE grp = (SELECT grp FROM tokens WHERE hash = $1) AND machine_id = $2 AND id <> $3 AND revoked_at IS NULL ORDER BY enrolled_at, id`,
			j.p.TokenHash, j.p.Info.MachineID, j.p.NewID).
			Query(func(rows pgx.Rows) error {
				var err error
				dups[i], err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
	}
	if err := pl.send(ctx, &lb); err != nil {
		return nil, err
	}

	errs := make([]error, len(jobs))
	taken := map[string]int64{}      // token id → uses this batch took
	seen := map[[2]string][]string{} // (group, machine id) → devices of this batch
	var w pgx.Batch
	// The batch's change of the aggregates, written once before COMMIT
	// (the new devices of a group all add to the same counter rows).
	agg := aggregate.NewDelta()
	auditQ := `INSERT INTO audit (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)`
	for i, j := range jobs {
		v := *views[string(j.p.TokenHash)]
		v.usesLeft -= taken[v.tokID]
		id, _, by, err := v.target(j.p)
		if err == nil && (by != "" || id != j.p.NewID) {
			err = errNotNew
		}
		if err != nil {
			errs[i] = err
			continue
		}
		taken[v.tokID]++
		p, now, info := j.p, nanos(j.p.Now), j.p.Info
		j.out = store.Enrolment{Issued: j.issued}
		w.Queue(`INSERT INTO devices (id, grp, hostname, platform, os_name, os_version, architecture, machine_id, agent_version, enrolled_at, cert_serial, cert_not_after)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			id, v.group, info.Hostname, info.Platform, info.OSName, info.OSVersion, info.Architecture, info.MachineID, info.AgentVersion, now, j.issued.Serial, nanos(j.issued.NotAfter))
		actor := "token " + v.tokID
		w.Queue(auditQ, now, actor, "device.enrol", id, "new device in group "+v.group)
		agg.Change(snapshot{ID: id}, snapshot{ID: id, Exists: true, Group: v.group, Class: aggregate.ClassOf(false, 0, 0, 0), Seen: now}, nanos(p.Now))
		if info.MachineID != "" {
			// Likely the same machine enrolled again, before or in this batch.
			key := [2]string{v.group, info.MachineID}
			d := append(dups[i], seen[key]...)
			seen[key] = append(seen[key], id)
			if len(d) > 0 {
				j.out.Duplicates = d
				w.Queue(auditQ, now, actor, "device.duplicate", id, "same machine id and group as "+strings.Join(d, ", "))
			}
		}
		if p.StartEpoch {
			queueEpoch(&w, p, id, &j.out.Epoch)
		}
		w.Queue(deviceSelect+` WHERE d.id = $1`, id).Query(func(rows pgx.Rows) error {
			ds, err := scanDevices(rows)
			if err == nil && len(ds) == 1 {
				j.out.Device = ds[0]
			}
			return err
		})
	}
	for _, h := range hashes {
		v := views[h]
		if n := taken[v.tokID]; n > 0 {
			w.Queue(`UPDATE tokens SET uses_left = uses_left - $2 WHERE id = $1`, v.tokID, n)
		}
	}
	queueDelta(&w, agg)
	if err := pl.commit(ctx, &w); err != nil {
		return nil, err
	}
	for i, j := range jobs {
		if errs[i] == nil && j.out.Device.ID == "" {
			errs[i] = errors.New("enrolled device not read back")
		}
	}
	return errs, nil
}
