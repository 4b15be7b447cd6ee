package dashboard

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/policies"
)

// Exports (docs/exports.md). An export is the fleet's state at one time,
// one row per device and rule, each row standing alone in front of an
// auditor: which policy version judged it, how severe the rule is, the
// collector's verdict even under a waiver, the deadline and whether it
// passed, and whether the device was still reporting. CSV and JSON carry
// the same metadata and the same rows.

// ExportFormat names the layout of an export, in its metadata.
const ExportFormat = "ward-export/3"

// ErrBeforeFirstReport: an export as of a time before which the
// collector holds no report collected (before its first, or before the
// history retention kept). An empty file would look like an empty fleet.
var ErrBeforeFirstReport = errors.New("no report had been collected by then")

// ErrFutureAsOf: an export as of a time still to come.
var ErrFutureAsOf = errors.New("that is in the future")

// Device statuses in an export, as of its time.
const (
	ExportFresh   = "fresh"   // reported within the stale threshold
	ExportStale   = "stale"   // silent for longer: its verdicts are its last known
	ExportRevoked = "revoked" // revoked by then: its last state before that
)

// NoReportReason is the reason of the one row of a device that had sent
// no report by the export's time.
const NoReportReason = "no report collected by as_of"

// ExportCollector names the collector an export came from.
type ExportCollector struct {
	Host    string `json:"host"`
	Version string `json:"version"`
}

// ExportMeta says what an export is.
type ExportMeta struct {
	Format      string    `json:"format"`
	GeneratedAt time.Time `json:"generated_at"`
	// AsOf is the time the state is of: GeneratedAt for a current export.
	AsOf      time.Time       `json:"as_of"`
	Collector ExportCollector `json:"collector"`
	// StaleAfterSeconds is the threshold device_status was judged by.
	StaleAfterSeconds int64 `json:"stale_after_seconds"`
	Devices           int   `json:"devices"`
	Rows              int   `json:"rows"`
	// DeadlinePolicies are the policies deadlines were counted with: each
	// group's current one (see ExportRow.Deadline).
	DeadlinePolicies []ExportPolicy `json:"deadline_policies"`
}

// ExportPolicy is the policy a group is held to.
type ExportPolicy struct {
	Group    string `json:"group"`
	Name     string `json:"name"`
	Version  int    `json:"version"`
	Embedded bool   `json:"embedded"`
}

func (p ExportPolicy) String() string {
	s := fmt.Sprintf("%s: %s v%d", p.Group, p.Name, p.Version)
	if p.Embedded {
		s += " (embedded)"
	}
	return s
}

// ExportWaiver is the waiver a row is under.
type ExportWaiver struct {
	ID        string    `json:"id"`
	By        string    `json:"by"`
	ExpiresAt time.Time `json:"expires_at"`
	Reason    string    `json:"reason"`
}

// ExportRow is one rule on one device as of the export's time.
type ExportRow struct {
	DeviceID     string `json:"device_id"`
	Hostname     string `json:"hostname"`
	Group        string `json:"group"`
	DeviceStatus string `json:"device_status"`
	// LastReport is when the report the row comes from was collected
	// (its observed time, which the collector vouches for: the evidence
	// time the state is picked by), ReceivedAt when it arrived: later,
	// for a report queued while the device was offline.
	LastReport    *time.Time `json:"last_report"`
	ReceivedAt    *time.Time `json:"received_at"`
	RevokedAt     *time.Time `json:"revoked_at"`
	PolicyName    string     `json:"policy_name"`
	PolicyVersion int        `json:"policy_version"`
	RuleID        string     `json:"rule_id"`
	RuleTitle     string     `json:"rule_title"`
	Severity      string     `json:"severity"`
	// Verdict is the collector's (PASS, FAIL, UNKNOWN), waived or not;
	// Status is what the fleet views show: WAIVED for a waived verdict
	// other than PASS, else Verdict.
	Verdict store.Verdict `json:"verdict"`
	Status  store.Verdict `json:"status"`
	// Since is when the verdict became what it is (failing since, for a
	// FAIL).
	Since *time.Time `json:"since"`
	// Deadline is Since + the rule's grace in the group's current policy
	// (Metadata.DeadlinePolicies), for a FAIL under a rule with one, as the
	// dashboard counts it. Overdue is a FAIL, not waived, at or past its
	// deadline; nil when it cannot be told (the group's policy has no such
	// rule any more).
	Deadline *time.Time `json:"deadline"`
	Overdue  *bool      `json:"overdue"`
	// DeadlinePaused is a FAIL under a connected grace (`grace: 72h
	// connected`, docs/connectivity.md) whose device's latest round found
	// no connection: its deadline is not running, and it is not overdue.
	// Deadline is then when it would be due were the device to connect
	// now.
	DeadlinePaused bool          `json:"deadline_paused"`
	Waiver         *ExportWaiver `json:"waiver"`
	Observed       string        `json:"observed"`
	Expected       string        `json:"expected"`
	Reason         string        `json:"reason"`
}

// Export is an export: its metadata and rows.
type Export struct {
	Metadata ExportMeta  `json:"metadata"`
	Rows     []ExportRow `json:"rows"`
}

// ExportOptions says what to export.
type ExportOptions struct {
	// Now is the time of the export; AsOf, if set, the time the state is
	// of (at most Now): without it, the state now.
	Now, AsOf  time.Time
	StaleAfter time.Duration
	Collector  ExportCollector
}

// BuildExport reads the fleet's state at o.AsOf (or o.Now) with the
// waivers active then applied. An AsOf before any report is
// ErrBeforeFirstReport, after Now ErrFutureAsOf.
func BuildExport(ctx context.Context, st store.Dashboard, o ExportOptions) (*Export, error) {
	now := o.Now.UTC()
	at := now
	if !o.AsOf.IsZero() {
		at = o.AsOf.UTC()
		if at.After(now) {
			return nil, ErrFutureAsOf
		}
	}
	ws, err := st.Waivers(ctx)
	if err != nil {
		return nil, err
	}
	graces, err := LoadGraces(ctx, st)
	if err != nil {
		return nil, err
	}
	e := &Export{Rows: []ExportRow{}, Metadata: ExportMeta{
		Format: ExportFormat, GeneratedAt: now, AsOf: at, Collector: o.Collector,
		StaleAfterSeconds: int64(o.StaleAfter / time.Second),
	}}
	last := ""
	reported := map[string]bool{}
	err = st.StateAsOf(ctx, at, func(r store.StateRow) error {
		row := ExportRow{
			DeviceID: r.DeviceID, Hostname: r.Hostname, Group: r.Group, LastReport: utc(&r.ReportedAt), ReceivedAt: utc(&r.ReceivedAt), RevokedAt: utc(r.RevokedAt),
			PolicyName: r.PolicyName, PolicyVersion: r.PolicyVersion, RuleID: r.RuleID, RuleTitle: r.Title, Severity: r.Severity,
			Verdict: r.Status, Status: r.Status, Since: utc(r.Since), Observed: r.Observed, Expected: r.Expected, Reason: r.Reason,
		}
		switch {
		case r.RevokedAt != nil:
			row.DeviceStatus = ExportRevoked
		case at.Sub(r.ReportedAt) > o.StaleAfter:
			row.DeviceStatus = ExportStale
		default:
			row.DeviceStatus = ExportFresh
		}
		if w := store.FindWaiver(ws, at, r.DeviceID, r.Group, r.RuleID); w != nil {
			row.Waiver = &ExportWaiver{ID: w.ID, By: w.CreatedBy, ExpiresAt: w.ExpiresAt.UTC(), Reason: w.Reason}
			if r.Status != store.Pass {
				row.Status = store.Waived
			}
		}
		if r.GraceConnected {
			row.Deadline, row.Overdue, row.DeadlinePaused = graces.ConnectedDeadline(r.Group, r.RuleID, r.Status, r.Since, r.ReportedAt, r.GraceUsed, r.DeadlinePaused, row.Waiver != nil, at)
		} else {
			row.Deadline, row.Overdue = graces.Deadline(r.Group, r.RuleID, r.Status, r.Since, row.Waiver != nil, at)
		}
		if r.DeviceID != last {
			e.Metadata.Devices++
			last = r.DeviceID
			reported[r.DeviceID] = true
		}
		e.Rows = append(e.Rows, row)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !o.AsOf.IsZero() && len(e.Rows) == 0 {
		return nil, ErrBeforeFirstReport
	}
	// A device enrolled by then without a report has no results, yet it
	// is part of the fleet, and unknown: one row says so.
	ds, err := st.Devices(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if reported[d.ID] || d.EnrolledAt.After(at) {
			continue
		}
		row := ExportRow{DeviceID: d.ID, Hostname: d.Hostname, Group: d.Group, DeviceStatus: ExportFresh,
			Verdict: store.Unknown, Status: store.Unknown, Reason: NoReportReason}
		no := false
		row.Overdue = &no
		switch {
		case d.RevokedAt != nil && !d.RevokedAt.After(at):
			row.DeviceStatus, row.RevokedAt = ExportRevoked, utc(d.RevokedAt)
		case at.Sub(d.EnrolledAt) > o.StaleAfter:
			row.DeviceStatus = ExportStale
		}
		e.Rows = append(e.Rows, row)
		e.Metadata.Devices++
	}
	slices.SortStableFunc(e.Rows, func(a, b ExportRow) int {
		return cmp.Or(strings.Compare(a.Hostname, b.Hostname), strings.Compare(a.DeviceID, b.DeviceID))
	})
	e.Metadata.Rows = len(e.Rows)
	e.Metadata.DeadlinePolicies = graces.describe()
	return e, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Graces are the rules' grace periods by group: those of each group's
// current policy (its own, or the embedded default), as the dashboard's
// device page and overview count deadlines.
type Graces struct {
	byGroup map[string]*groupGrace
	def     *groupGrace
	used    map[string]bool // the groups asked about
}

type groupGrace struct {
	name     string
	version  int
	embedded bool
	rules    map[string]time.Duration
}

// Of is the grace of rule in group's policy, and false when that policy
// has no such rule.
func (g *Graces) Of(group, rule string) (time.Duration, bool) {
	gg, ok := g.byGroup[group]
	if !ok {
		gg = g.def
	}
	g.used[group] = true
	d, ok := gg.rules[rule]
	return d, ok
}

// Deadline is when a rule failing since since must be fixed, and
// whether it is overdue at at: a FAIL, not waived, at or past its
// deadline. A verdict other than FAIL, or a rule without grace, has no
// deadline and is not overdue; when the group's policy no longer has the
// rule (or the failure has no start) neither can be told: nil, nil.
func (g *Graces) Deadline(group, rule string, verdict store.Verdict, since *time.Time, waived bool, at time.Time) (*time.Time, *bool) {
	no := false
	grace, known := g.Of(group, rule)
	switch {
	case verdict != store.Fail:
		return nil, &no
	case !known || since == nil:
		return nil, nil
	case grace <= 0:
		return nil, &no
	}
	dl := since.Add(grace).UTC()
	over := !waived && !at.Before(dl)
	return &dl, &over
}

// ConnectedDeadline is Deadline for a rule whose grace counts connected
// time only (docs/connectivity.md): due at the report's time (reported)
// plus what is left of the grace after used, and paused when the report
// said the deadline is not running; a paused failure is not overdue
// (listed apart as paused). Its grace is still the group's policy's.
func (g *Graces) ConnectedDeadline(group, rule string, verdict store.Verdict, since *time.Time, reported time.Time, used time.Duration, paused, waived bool, at time.Time) (*time.Time, *bool, bool) {
	dl, over := g.Deadline(group, rule, verdict, since, waived, at)
	if dl == nil {
		return dl, over, false
	}
	grace, _ := g.Of(group, rule)
	d, _ := store.ConnectedDeadline(reported, grace, used, paused)
	d = d.UTC()
	o := !waived && !paused && !at.Before(d)
	return &d, &o, paused
}

// describe names the policy each group asked about was held to:
// "field: field v2, staff: baseline v1 (embedded)".
func (g *Graces) describe() []ExportPolicy {
	var out []ExportPolicy
	for group := range g.used {
		gg, ok := g.byGroup[group]
		if !ok {
			gg = g.def
		}
		out = append(out, ExportPolicy{Group: group, Name: gg.name, Version: gg.version, Embedded: gg.embedded})
	}
	slices.SortFunc(out, func(a, b ExportPolicy) int { return strings.Compare(a.Group, b.Group) })
	return out
}

func newGrace(p *policies.Policy, embedded bool) *groupGrace {
	gg := &groupGrace{name: p.Name, version: p.Version, embedded: embedded, rules: map[string]time.Duration{}}
	for _, r := range p.Rules {
		gg.rules[r.ID] = r.Grace
	}
	return gg
}

// LoadGraces reads and parses every group's current policy.
func LoadGraces(ctx context.Context, st store.Dashboard) (*Graces, error) {
	def, err := policies.Embedded(server.DefaultPolicy)
	if err != nil {
		return nil, err
	}
	g := &Graces{byGroup: map[string]*groupGrace{}, def: newGrace(def, true), used: map[string]bool{}}
	stored, err := st.Policies(ctx)
	if err != nil {
		return nil, err
	}
	for _, sp := range stored {
		p, err := policies.Parse("group "+sp.Group, sp.Document)
		if err != nil {
			return nil, fmt.Errorf("stored policy of group %q: %w", sp.Group, err)
		}
		g.byGroup[sp.Group] = newGrace(p, false)
	}
	return g, nil
}

// ParseAsOf reads an export's as-of: a date (2006-01-02: the end of that
// UTC day, or now for today) or an RFC 3339 time.
func ParseAsOf(s string, now time.Time) (time.Time, error) {
	t, err := parseWhen(s)
	if err != nil {
		return time.Time{}, err
	}
	now = now.UTC()
	if _, derr := time.Parse("2006-01-02", s); derr == nil && t.After(now) && t.Format("2006-01-02") == now.Format("2006-01-02") {
		return now, nil // today so far
	}
	if t.After(now) {
		return time.Time{}, ErrFutureAsOf
	}
	return t, nil
}

// FileName is the export's dated file name: ward-export-DAY.csv for the
// state on the day it was generated, ward-export-DAY-as-of-WHEN.csv for
// an earlier state (WHEN a day, or a day and time when not its end).
func (e *Export) FileName(format string) string {
	m := e.Metadata
	name := "ward-export-" + m.GeneratedAt.Format("2006-01-02")
	if !m.AsOf.Equal(m.GeneratedAt) {
		when := m.AsOf.Format("2006-01-02")
		if end := m.AsOf.Truncate(24*time.Hour).AddDate(0, 0, 1).Add(-time.Nanosecond); !m.AsOf.Equal(end) {
			when = m.AsOf.Format("2006-01-02T150405Z")
		}
		name += "-as-of-" + when
	}
	return name + "." + format
}

// ExportHeader is the CSV header row, after the metadata lines.
var ExportHeader = []string{"device_id", "hostname", "group", "device_status", "last_report", "revoked_at", "policy_name", "policy_version",
	"rule_id", "rule_title", "severity", "verdict", "status", "since", "deadline", "overdue",
	"waiver_id", "waiver_by", "waiver_expires", "waiver_reason", "observed", "expected", "reason",
	// Added after the others, so readers by position keep working.
	"deadline_paused", "received_at"}

// CSVMetaLines is how many lines of metadata, each starting with "# ",
// come before the CSV header row: always this many, so a reader that
// knows no comments can skip them by count.
const CSVMetaLines = 9

// Write writes the export as "csv" (the metadata lines, the header row,
// a record per row) or "json" (an object: metadata, rows).
func (e *Export) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(e)
	case "csv":
		m := e.Metadata
		meta := []string{
			fmt.Sprintf("%s: %d lines of metadata, then a header row and a record per device and rule (docs/exports.md)", ExportFormat, CSVMetaLines),
			"generated_at: " + m.GeneratedAt.Format(time.RFC3339Nano),
			"as_of: " + m.AsOf.Format(time.RFC3339Nano),
			"collector: " + m.Collector.Host,
			"collector_version: " + m.Collector.Version,
			"stale_after_seconds: " + strconv.FormatInt(m.StaleAfterSeconds, 10),
			"devices: " + strconv.Itoa(m.Devices),
			"rows: " + strconv.Itoa(m.Rows),
			"deadline_policies: " + joinPolicies(m.DeadlinePolicies),
		}
		for _, l := range meta {
			if _, err := io.WriteString(w, "# "+oneLine(l)+"\n"); err != nil {
				return err
			}
		}
		cw := csv.NewWriter(w)
		cw.Write(ExportHeader)
		for _, r := range e.Rows {
			rec := []string{r.DeviceID, r.Hostname, r.Group, r.DeviceStatus, stamp(r.LastReport), stamp(r.RevokedAt), r.PolicyName, strconv.Itoa(r.PolicyVersion),
				r.RuleID, r.RuleTitle, r.Severity, string(r.Verdict), string(r.Status), stamp(r.Since), stamp(r.Deadline), yesNo(r.Overdue),
				"", "", "", "", r.Observed, r.Expected, r.Reason, yesNo(&r.DeadlinePaused), stamp(r.ReceivedAt)}
			if wv := r.Waiver; wv != nil {
				copy(rec[16:20], []string{wv.ID, wv.By, stamp(&wv.ExpiresAt), wv.Reason})
			}
			for i := range rec {
				rec[i] = CSVSafe(rec[i])
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	return fmt.Errorf("unknown export format %q (want csv or json)", format)
}

func joinPolicies(ps []ExportPolicy) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

func stamp(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// yesNo is overdue in CSV: "yes", "no", or "" when it cannot be told.
func yesNo(b *bool) string {
	switch {
	case b == nil:
		return ""
	case *b:
		return "yes"
	}
	return "no"
}

// oneLine keeps a metadata value on its line: control characters become
// spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// ThisCollector names the collector running this process: its host name
// and the given version.
func ThisCollector(version string) ExportCollector {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	if version == "" {
		version = "unknown"
	}
	return ExportCollector{Host: host, Version: version}
}

// ExportWriteTimeout is how long the dashboard's export may take to
// write, past the server's WriteTimeout for pages.
const ExportWriteTimeout = 10 * time.Minute

// CSVSafe keeps a spreadsheet from reading a cell as a formula (OWASP's
// CSV injection advice): a cell that starts with = + - @ (or their
// full-width forms), a TAB or a CR, or with one of = + - @ after leading
// white space or control or format characters, is prefixed with ' (which
// spreadsheets show as text and do not display).
func CSVSafe(s string) string {
	if s == "" {
		return s
	}
	if s[0] == '\t' || s[0] == '\r' {
		return "'" + s
	}
	t := strings.TrimLeftFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.In(r, unicode.Cc, unicode.Cf)
	})
	if r, _ := utf8.DecodeRuneInString(t); strings.ContainsRune("=+-@\uff1d\uff0b\uff0d\uff20\ufe62\ufe63", r) && t != "" {
		return "'" + s
	}
	return s
}
