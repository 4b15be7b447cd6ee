package evidence

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/policies"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Summarize computes the summary of f from its reports (their statements
// and facts) and policies alone, as ward-verify does; f's own Summary is
// not read.
//
// Each report stands for the device's state from its observed time until
// the next report, at most DefaultCoverage; the rest of [From, To) is
// unobserved. Each report's facts are evaluated (policies.Evaluate, Now
// its observed time) with the policy document its statement names and the
// release feed its FeedSerial names (the file's Feeds). A report whose
// feed the file does not carry (or carries invalid) is judged with no
// feed and the reason, so its feed rules are UNKNOWN, with a text line
// saying why; one that names none (0) is judged with none, as the
// collector judged it. A
// report that cannot be evaluated — its policy document missing from the
// file or not matching its hash, its statement or facts unreadable, its
// facts not the ones its statement names — makes every rule UNKNOWN for
// its time: nothing unverifiable counts as PASS. Summarize does not check
// signatures or certificates; Verify does.
func Summarize(f *File) (Summary, error) {
	if f == nil {
		return Summary{}, errors.New("summarize: no file")
	}
	pols := usablePolicies(f.Policies)
	feeds := usableFeeds(f.Feeds)
	sum := Summary{CoverageSeconds: int64(DefaultCoverage / time.Second), Devices: []DeviceSummary{}}
	for i := range f.Devices {
		sum.Devices = append(sum.Devices, summarizeDevice(f, &f.Devices[i], pols, feeds))
	}
	return sum, nil
}

// policyKey names a policy document.
type policyKey struct {
	name    string
	version int
}

func (k policyKey) String() string { return k.name + " v" + strconv.Itoa(k.version) }

// usablePolicies parses the documents that hash to their sha256 and claim
// the name and version they hold; a (name, version) given twice is
// usable only if both are the same document.
func usablePolicies(ps []Policy) map[policyKey]*policies.Policy {
	out := map[policyKey]*policies.Policy{}
	bad := map[policyKey]bool{}
	docs := map[policyKey]string{}
	for _, p := range ps {
		k := policyKey{p.Name, p.Version}
		if d, seen := docs[k]; seen {
			if d != p.Document {
				bad[k] = true
			}
			continue
		}
		docs[k] = p.Document
		if policyProblem(p) != "" {
			bad[k] = true
			continue
		}
		parsed, err := parseDocument(p)
		if err != nil {
			bad[k] = true
			continue
		}
		out[k] = parsed
	}
	for k := range bad {
		delete(out, k)
	}
	return out
}

// policyProblem says what is wrong with p's hash, or "".
func policyProblem(p Policy) string {
	sum := sha256.Sum256([]byte(p.Document))
	if !strings.EqualFold(p.SHA256, hex.EncodeToString(sum[:])) || len(p.SHA256) != 2*sha256.Size {
		return fmt.Sprintf("document does not hash to its sha256 (it hashes to %x)", sum)
	}
	return ""
}

// point is what one report says from its time on.
type point struct {
	at time.Time
	// statuses are the verdicts by rule id (rules that do not apply to
	// the device are absent); nil with unknown set when the report could
	// not be evaluated.
	statuses map[string]string
	unknown  string
	// feedWhy is, when the report names a release feed the file does not
	// carry, why its feed rules are UNKNOWN.
	feedWhy string
}

func summarizeDevice(f *File, d *Device, pols map[policyKey]*policies.Policy, feeds map[uint64]*feed.Feed) DeviceSummary {
	ds := DeviceSummary{DeviceID: d.DeviceID, Unobserved: []Period{}, Rules: []RuleSummary{}, Text: []string{}}
	var pts []point
	var ruleOrder []string
	titles := map[string]string{}
	for i := range d.Reports {
		pt, ok := evaluateReport(&d.Reports[i], pols, feeds, func(r policies.Result) {
			if _, seen := titles[r.RuleID]; !seen {
				titles[r.RuleID] = r.Title
				ruleOrder = append(ruleOrder, r.RuleID)
			}
		})
		if ok {
			pts = append(pts, pt)
		}
	}
	slices.SortStableFunc(pts, func(a, b point) int { return a.at.Compare(b.at) })

	from, to := f.From.UTC(), f.To.UTC()
	rules := map[string]*RuleSummary{}
	for _, id := range ruleOrder {
		rules[id] = &RuleSummary{RuleID: id, Title: titles[id], Periods: []Period{}}
	}
	unknownWhy := map[string][]Period{}
	var whyOrder []string
	feedWhy := map[string][]Period{}
	var feedWhyOrder []string
	cursor := from
	for k, pt := range pts {
		start, end := pt.at, pt.at.Add(DefaultCoverage)
		if k+1 < len(pts) && pts[k+1].at.Before(end) {
			end = pts[k+1].at
		}
		start, end = maxTime(start, from), minTime(end, to)
		if !start.Before(end) {
			continue
		}
		if cursor.Before(start) {
			ds.Unobserved = appendPeriod(ds.Unobserved, Period{From: cursor, To: start})
		}
		cursor = maxTime(cursor, end)
		for _, id := range ruleOrder {
			status, ok := pt.statuses[id]
			if pt.statuses == nil {
				status, ok = string(policies.StatusUnknown), true
			}
			if ok {
				rules[id].Periods = appendPeriod(rules[id].Periods, Period{From: start, To: end, Status: status})
			}
		}
		if pt.statuses == nil {
			if _, seen := unknownWhy[pt.unknown]; !seen {
				whyOrder = append(whyOrder, pt.unknown)
			}
			unknownWhy[pt.unknown] = appendPeriod(unknownWhy[pt.unknown], Period{From: start, To: end})
		}
		if pt.feedWhy != "" {
			if _, seen := feedWhy[pt.feedWhy]; !seen {
				feedWhyOrder = append(feedWhyOrder, pt.feedWhy)
			}
			feedWhy[pt.feedWhy] = appendPeriod(feedWhy[pt.feedWhy], Period{From: start, To: end})
		}
	}
	if cursor.Before(to) {
		ds.Unobserved = appendPeriod(ds.Unobserved, Period{From: cursor, To: to})
	}
	var unobserved time.Duration
	for _, p := range ds.Unobserved {
		unobserved += p.To.Sub(p.From)
	}
	ds.UnobservedSeconds = int64(unobserved / time.Second)

	for _, id := range ruleOrder {
		r := rules[id]
		ds.Rules = append(ds.Rules, *r)
		for _, p := range r.Periods {
			ds.Text = append(ds.Text, fmt.Sprintf("%s: %s from %s to %s", id, p.Status, stamp(p.From), stamp(p.To)))
		}
	}
	for _, why := range whyOrder {
		for _, p := range unknownWhy[why] {
			ds.Text = append(ds.Text, fmt.Sprintf("every rule UNKNOWN from %s to %s: %s", stamp(p.From), stamp(p.To), why))
		}
	}
	for _, why := range feedWhyOrder {
		for _, p := range feedWhy[why] {
			ds.Text = append(ds.Text, fmt.Sprintf("rules judged by the release feed UNKNOWN from %s to %s: %s", stamp(p.From), stamp(p.To), why))
		}
	}
	if unobserved == 0 {
		ds.Text = append(ds.Text, "nothing unobserved")
	} else {
		ds.Text = append(ds.Text, Duration(unobserved)+" unobserved")
		for _, p := range ds.Unobserved {
			ds.Text = append(ds.Text, fmt.Sprintf("unobserved from %s to %s", stamp(p.From), stamp(p.To)))
		}
	}
	for _, g := range d.Gaps {
		ds.Text = append(ds.Text, GapText(g))
	}
	for _, fk := range d.Forks {
		ds.Text = append(ds.Text, ForkText(fk))
	}
	return ds
}

// evaluateReport evaluates one report; ok is false when it has no time to
// stand for. seen is called with each result.
func evaluateReport(r *Report, pols map[policyKey]*policies.Policy, feeds map[uint64]*feed.Feed, seen func(policies.Result)) (pt point, ok bool) {
	st, stErr := DecodeStatement(r.Statement)
	pt.at = r.ObservedAt.UTC()
	if r.ObservedAt.IsZero() {
		if stErr != nil || st.GetCollectedAt() == nil {
			return pt, false
		}
		pt.at = st.GetCollectedAt().AsTime().UTC()
	}
	if stErr != nil {
		pt.unknown = "a report's statement does not decode"
		return pt, true
	}
	k := policyKey{st.GetPolicyName(), int(st.GetPolicyVersion())}
	pol := pols[k]
	if pol == nil {
		pt.unknown = "policy " + k.String() + " is not in the file (or does not match its hash)"
		return pt, true
	}
	facts, why := reportFacts(r, st)
	if why != "" {
		pt.unknown = why
		return pt, true
	}
	in, feedWhy := feedInput(feeds, r.FeedSerial)
	pt.feedWhy = feedWhy
	pt.statuses = map[string]string{}
	for _, res := range policies.Evaluate(context.Background(), pol, facts, policies.Options{Now: pt.at, Feed: in}) {
		pt.statuses[res.RuleID] = string(res.Status)
		seen(res)
	}
	return pt, true
}

// reportFacts decodes r's facts and checks them against the statement: it
// returns why they cannot be used, or "".
func reportFacts(r *Report, st *wardv1.ReportStatement) (*wardv1.Facts, string) {
	facts := &wardv1.Facts{}
	if err := proto.Unmarshal(r.Facts, facts); err != nil {
		return nil, "a report's facts do not decode"
	}
	if !bytes.Equal(FactsDigest(facts), st.GetFactsDigest()) {
		return nil, "a report's facts are not those its statement names"
	}
	// The digest leaves collected_at out (it is the statement's own);
	// a collected_at in the facts must be the statement's, so no byte of
	// the file is outside what a signature fixes.
	if c := facts.GetCollectedAt(); c != nil && !proto.Equal(c, st.GetCollectedAt()) {
		return nil, "a report's facts carry another collected_at than its statement"
	}
	if p := facts.GetPatchLevel(); len(p.GetPending()) > 0 && len(p.GetPendingDigest()) > 0 &&
		!bytes.Equal(policies.PendingDigest(p.GetPending()), p.GetPendingDigest()) {
		return nil, "a report's pending updates are not those their digest names"
	}
	return facts, ""
}

// appendPeriod appends p, merging it into the last period when it
// continues it with the same status.
func appendPeriod(ps []Period, p Period) []Period {
	p.From, p.To = p.From.UTC(), p.To.UTC()
	if n := len(ps); n > 0 && ps[n-1].To.Equal(p.From) && ps[n-1].Status == p.Status {
		ps[n-1].To = p.To
		return ps
	}
	return append(ps, p)
}

// GapText is a gap's summary line.
func GapText(g Gap) string {
	missing := uint64(0)
	if g.Before > g.After {
		missing = g.Before - g.After - 1
	}
	dropped := min(g.Dropped, missing)
	noun := "reports"
	if missing == 1 {
		noun = "report"
	}
	return fmt.Sprintf("epoch %d: %d %s missing after %d (%d dropped by the agent, %d unexplained)", g.Epoch, missing, noun, g.After, dropped, missing-dropped)
}

// ForkText is a fork's summary line.
func ForkText(k Fork) string {
	return fmt.Sprintf("epoch %d: fork at sequence %d: its predecessor %x is also claimed by sequence %d (recorded %s)", k.Epoch, k.Sequence, short(k.PrevHash), k.OtherSequence, stamp(k.RecordedAt))
}

// Duration writes d in days, hours, minutes ("3 days 4 hours"), or
// seconds under a minute.
func Duration(d time.Duration) string {
	if d < time.Minute {
		return plural(int64(d/time.Second), "second")
	}
	var parts []string
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}} {
		if n := int64(d / u.d); n > 0 {
			parts = append(parts, plural(n, u.name))
			d -= time.Duration(n) * u.d
		}
	}
	return strings.Join(parts, " ")
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// parseDocument parses a policy document of the file. Parsed documents
// are kept by their content's hash (a file names few; compiling one costs
// more than evaluating many reports with it).
func parseDocument(p Policy) (*policies.Policy, error) {
	key := sha256.Sum256([]byte(p.Document))
	parsedMu.Lock()
	c, ok := parsed[key]
	parsedMu.Unlock()
	if ok {
		return c.p, c.err
	}
	pol, err := policies.Parse("evidence", []byte(p.Document))
	parsedMu.Lock()
	defer parsedMu.Unlock()
	if len(parsed) >= maxParsed {
		clear(parsed)
	}
	parsed[key] = parsedDoc{pol, err}
	return pol, err
}

const maxParsed = 32

type parsedDoc struct {
	p   *policies.Policy
	err error
}

var (
	parsedMu sync.Mutex
	parsed   = map[[sha256.Size]byte]parsedDoc{}
)
