package dashboard

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// The device page: its rules, the ones that need action first (failing,
// then unknown, then waived, then passing), and a timeline of what
// happened to it: verdict changes, its group's policy changes, waivers,
// certificate renewals, enrolment and re-binds.

type ruleRow struct {
	store.RuleState
	Status   store.Verdict
	Deadline *time.Time
	Overdue  bool
	// NoDeadline says why a FAIL row has no deadline.
	NoDeadline string
	// Paused is a connected-grace deadline (docs/connectivity.md) that
	// is not running: the device's latest round found no connection.
	// Connected says what is left of such a grace: "3 connected days
	// left", or "deadline paused: no connection since …".
	Paused    bool
	Connected string
	Waiver    *store.Waiver
}

// ruleRank orders the rows by what they ask of the reader.
func ruleRank(r ruleRow) int {
	switch r.Status {
	case store.Fail:
		return 0
	case store.Unknown:
		return 1
	case store.Waived:
		return 2
	}
	return 3
}

// event is one entry of a device's timeline.
type event struct {
	At   time.Time
	Kind string // verdict, policy, waiver, certificate, enrolment, revocation
	Text string
}

type deviceData struct {
	Now         time.Time
	Device      store.Device
	Status      store.DeviceStatus
	Cert        deviceRow
	Stale       bool
	Policy      groupPolicy
	Rules       []ruleRow
	Counts      map[string]int
	Timeline    []event
	TimelineMax int
	// PolicyChanged says the group's policy is not the one of the
	// device's last report: its verdicts are the old policy's.
	PolicyChanged string
	// Duplicates are the other devices of the group with this device's
	// machine id: likely the same machine enrolled again.
	Duplicates []store.Device
	// LastReport is the device's newest stored report, if any: its
	// ClockSuspect says the agent's clock was not trusted.
	LastReport *store.Report
	// Chain is the gaps and forks of its sealed reports (chain.go); nil
	// when there are none.
	Chain *chainData
}

// connectedNote is what is left of a failing connected-grace rule's
// grace: "3 connected days left" while its deadline runs, or "deadline
// paused: no connection since 2026-03-10 11:00 UTC (3 connected days
// left)" when the latest round found no connection. The time of no
// connection is the last the collector knows the device reached its
// collector or update source (conn), else the paused report's own.
func connectedNote(st store.RuleState, grace time.Duration, conn *store.DeviceConnectivity, now time.Time) string {
	left := max(grace-st.GraceUsed, 0)
	if !st.DeadlinePaused {
		dl, _ := st.Deadline(grace)
		left = dl.Sub(now)
		if left <= 0 {
			return "connected grace used up"
		}
		return connectedLeft(left)
	}
	since := st.UpdatedAt
	if conn != nil {
		if t := conn.LastConnected(); t != nil {
			since = *t
		}
	}
	return fmt.Sprintf("deadline paused: no connection since %s (%s)", since.UTC().Format("2006-01-02 15:04 UTC"), connectedLeft(left))
}

// connectedLeft is "3 connected days left", "1 connected day left",
// "5 connected hours left", "no connected time left".
func connectedLeft(d time.Duration) string {
	switch days, hours := int(d/(24*time.Hour)), int(d/time.Hour); {
	case days >= 2:
		return fmt.Sprintf("%d connected days left", days)
	case days == 1:
		return "1 connected day left"
	case hours >= 2:
		return fmt.Sprintf("%d connected hours left", hours)
	case d > 0:
		return "less than 2 connected hours left"
	}
	return "no connected time left"
}

// timelineMax bounds the timeline: the newest entries.
const timelineMax = 150

func (h *handler) device(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.now()
	dev, err := h.st.Device(ctx, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "Device")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	states, err := h.st.RuleStates(ctx, dev.ID)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	trans, err := h.st.Transitions(ctx, dev.ID)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	waivers, err := h.st.Waivers(ctx)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	audit, err := h.st.AuditFor(ctx, []string{dev.ID, dev.Group}, timelineMax)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	gp, err := h.policyFor(ctx, dev.Group)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	grace := map[string]time.Duration{}
	for _, rule := range gp.Policy.Rules {
		grace[rule.ID] = rule.Grace
	}
	d := deviceData{Now: now, Device: dev, Status: dev.Status(now, h.cfg.StaleAfter), Policy: gp, Cert: newDeviceRow(dev, now, h.cfg.StaleAfter), Counts: map[string]int{}, TimelineMax: timelineMax}
	last, err := h.st.Reports(ctx, dev.ID, 1)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if len(last) == 1 {
		d.LastReport = &last[0]
		if lr := last[0]; lr.PolicyName != gp.Name || lr.PolicyVersion != gp.Version {
			d.PolicyChanged = fmt.Sprintf("Its last report was evaluated under policy %s version %d; group %s is now held to %s version %d", lr.PolicyName, lr.PolicyVersion, dev.Group, gp.Name, gp.Version)
			if !gp.Embedded && !gp.Updated.IsZero() {
				d.PolicyChanged += " (set " + gp.Updated.UTC().Format("2006-01-02 15:04 UTC") + ")"
			}
			d.PolicyChanged += ". The rows below are its last verdicts; deadlines follow the current policy's grace periods, for the rules it still has."
		}
	}
	d.Stale = d.Status == store.StatusStale
	var conn *store.DeviceConnectivity
	if cs, ok := h.st.(store.Connectivities); ok {
		c, found, err := cs.DeviceConnectivity(ctx, dev.ID)
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		if found {
			conn = &c
		}
	}
	for _, st := range states {
		row := ruleRow{RuleState: st, Status: st.Collector, Waiver: store.FindWaiver(waivers, now, dev.ID, dev.Group, st.RuleID)}
		if row.Status == "" {
			row.Status = store.Unknown
		}
		g, inPolicy := grace[st.RuleID]
		switch {
		case st.FailingSince != nil && g > 0 && st.GraceConnected:
			dl, paused := st.Deadline(g)
			row.Deadline, row.Overdue, row.Paused = &dl, st.Overdue(g, now), paused
			row.Connected = connectedNote(st, g, conn, now)
		case st.FailingSince != nil && g > 0:
			dl := st.FailingSince.Add(g)
			row.Deadline, row.Overdue = &dl, !now.Before(dl)
		case row.Status == store.Fail && !inPolicy:
			row.NoDeadline = fmt.Sprintf("none: policy %s version %d has no rule %s", gp.Name, gp.Version, st.RuleID)
		case row.Status == store.Fail && st.FailingSince == nil:
			row.NoDeadline = "none: the collector has no failing-since time for this verdict"
		case row.Status == store.Fail:
			row.NoDeadline = fmt.Sprintf("none: policy %s version %d gives this rule no grace period", gp.Name, gp.Version)
		}
		if row.Waiver != nil && row.Status != store.Pass {
			row.Status = store.Waived
		}
		d.Counts[string(row.Status)]++
		d.Rules = append(d.Rules, row)
	}
	slices.SortStableFunc(d.Rules, func(a, b ruleRow) int {
		if c := cmp.Compare(ruleRank(a), ruleRank(b)); c != 0 {
			return c
		}
		// Within failing rows: overdue and nearest deadline first.
		switch {
		case a.Deadline != nil && b.Deadline == nil:
			return -1
		case a.Deadline == nil && b.Deadline != nil:
			return 1
		case a.Deadline != nil && !a.Deadline.Equal(*b.Deadline):
			return a.Deadline.Compare(*b.Deadline)
		}
		return strings.Compare(a.RuleID, b.RuleID)
	})
	if d.Chain, err = chainOf(ctx, h.st, dev.ID); err != nil {
		h.serverError(w, r, err)
		return
	}
	d.Timeline = timeline(dev, trans, waivers, audit, now)
	if d.Duplicates, err = h.duplicatesOf(ctx, dev); err != nil {
		h.serverError(w, r, err)
		return
	}
	p := page{Title: dev.Hostname, Nav: "devices", Data: d}
	if r.URL.Query().Get("revoked") != "" && dev.Revoked() {
		p.Notice = "Revoked " + dev.Hostname + ": its certificate is refused from now on; its history is kept."
	}
	if r.URL.Query().Get("retired") != "" {
		p.Notice = "Retired device " + r.URL.Query().Get("retired") + ": its certificate is revoked and it no longer counts in the fleet; its history is kept."
	}
	h.render(w, r, "device", p)
}

// timeline merges the device's verdict changes (at their reports'
// collected time, with the time of receipt when it was later), the
// waivers of it and
// its group, and the audit entries of it and its group, newest first, at
// most timelineMax.
func timeline(dev store.Device, trans []store.Transition, ws []store.Waiver, audit []store.AuditEntry, now time.Time) []event {
	var out []event
	for _, t := range trans {
		from := string(t.From)
		if from == "" {
			from = "first verdict"
		}
		text := fmt.Sprintf("%s: %s → %s (report %d)", t.RuleID, from, t.To, t.Sequence)
		if late := store.ReceivedLate(t); late != nil {
			text = fmt.Sprintf("%s: %s → %s (report %d, collected then, received %s)", t.RuleID, from, t.To, t.Sequence, late.UTC().Format("2006-01-02 15:04 UTC"))
		}
		out = append(out, event{t.At, "verdict", text})
	}
	for _, w := range ws {
		if !(w.DeviceID == dev.ID || w.DeviceID == "" && w.Group == dev.Group) {
			continue
		}
		whom := "this device"
		if w.DeviceID == "" {
			whom = "all of group " + w.Group
		}
		out = append(out, event{w.CreatedAt, "waiver", fmt.Sprintf("waiver %s granted by %s for %s on %s until %s: %s", w.ID, w.CreatedBy, w.RuleID, whom, w.ExpiresAt.UTC().Format("2006-01-02"), w.Reason)})
		switch {
		case w.RevokedAt != nil && w.RevokedAt.Before(w.ExpiresAt):
			out = append(out, event{*w.RevokedAt, "waiver", fmt.Sprintf("waiver %s for %s revoked", w.ID, w.RuleID)})
		case !now.Before(w.ExpiresAt):
			out = append(out, event{w.ExpiresAt, "waiver", fmt.Sprintf("waiver %s for %s expired", w.ID, w.RuleID)})
		}
	}
	for _, e := range audit {
		kind := ""
		switch {
		case e.Action == "policy.apply" && e.Target == dev.Group:
			kind = "policy"
		case e.Target != dev.ID:
			continue // other entries of the group: what-ifs, tokens
		case strings.HasPrefix(e.Action, "device.cert."):
			kind = "certificate"
		case e.Action == "device.rebind" || e.Action == "device.enrol" || e.Action == "device.duplicate":
			kind = "enrolment"
		case e.Action == "device.revoke" || e.Action == "device.retire":
			kind = "revocation"
		default:
			kind = "admin"
		}
		text := auditText(e)
		if kind == "policy" {
			text = "group " + dev.Group + " policy set: " + e.Detail
		}
		out = append(out, event{e.At, kind, text + " (by " + e.Actor + ")"})
	}
	slices.SortStableFunc(out, func(a, b event) int { return b.At.Compare(a.At) })
	return out[:min(len(out), timelineMax)]
}

// auditText says an audit entry of the device in words.
func auditText(e store.AuditEntry) string {
	what := map[string]string{
		"device.enrol":        "enrolled",
		"device.rebind":       "re-bound",
		"device.duplicate":    "likely duplicate",
		"device.cert.renew":   "certificate renewed",
		"device.cert.promote": "renewed certificate in use",
		"device.revoke":       "revoked",
		"device.retire":       "retired",
	}[e.Action]
	if what == "" {
		what = e.Action
	}
	if e.Detail != "" {
		what += ": " + e.Detail
	}
	return what
}
