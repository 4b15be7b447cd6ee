package policies

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

	"github.com/wardhq/ward/feed"
	"github.com/wardhq/ward/policies/texts"
	wardv1 "github.com/wardhq/ward/proto/ward/v1"
)

// Status is a rule's outcome on one device.
type Status string

// Rule outcomes. Only an expression that gives exactly true is a PASS.
const (
	StatusPass    Status = "PASS"
	StatusFail    Status = "FAIL"
	StatusUnknown Status = "UNKNOWN"
)

// Options tune an evaluation.
type Options struct {
	// Now is the evaluation time; zero means time.Now().
	Now time.Time
	// Lang picks the language of titles, expected texts and remediation
	// ("fr", "fr-CA"); texts missing in it fall back to English.
	Lang string
	// FailingSince holds, per rule id, when this device was first observed
	// failing the rule; grace runs from there.
	FailingSince map[string]time.Time
	// GraceUsed holds, per connected-grace rule failing since its
	// FailingSince, the connected time the device has had since then
	// (docs/connectivity.md): such a rule's deadline is Now plus what is
	// left of its grace, and it is overdue once GraceUsed reaches Grace.
	GraceUsed map[string]time.Duration
	// Paused holds the connected-grace rules whose deadline is not running
	// because this round found no connection for them; the value is when
	// the device last had one (zero: not since it started failing).
	Paused map[string]time.Time
	// Feed is the release feed the feed functions (os_supported,
	// missed_security_releases, feed_age; docs/feed.md) judge by. Nil, or
	// a FeedInput without a Feed, makes them UNKNOWN, saying why.
	Feed *FeedInput
}

// FeedInput is the release feed an evaluation judges by, or why there is
// none it can use.
type FeedInput struct {
	// Feed is the verified feed; nil when there is none to use. An
	// expired one (Now at or after its ExpiresAt) is never used.
	Feed *feed.Feed
	// Why says, when Feed is nil, why: feed.none (none received yet),
	// feed.unverifiable (refused, with the reason) — catalogue messages
	// of package policies/texts. Empty means feed.none.
	Why []texts.Text
}

// Result is one rule's outcome on one device.
type Result struct {
	RuleID      string `json:"rule_id"`
	Title       string `json:"title"`
	Family      string `json:"family"`
	Status      Status `json:"status"`
	Severity    string `json:"severity"`
	Observed    string `json:"observed"`
	Expected    string `json:"expected"`
	Remediation string `json:"remediation"`
	// Reason says why the result is UNKNOWN.
	Reason string `json:"reason,omitempty"`
	// ObservedText and ReasonText are Observed and Reason as catalogue
	// messages (package policies/texts), for the reader's language;
	// Observed and Reason are their English rendering.
	ObservedText []texts.Text `json:"observed_text,omitempty"`
	ReasonText   []texts.Text `json:"reason_text,omitempty"`
	FailingSince *time.Time   `json:"failing_since,omitempty"`
	Deadline     *time.Time   `json:"deadline,omitempty"`
	Overdue      bool         `json:"overdue,omitempty"`
	// GraceConnected says only connected time counts against the rule's
	// grace; on a FAIL, GraceUsed is the connected time counted so far and
	// DeadlinePaused says the deadline is not running (no connection this
	// round) since PausedSince, the last time there was one (nil: none
	// since the rule started failing).
	GraceConnected bool          `json:"grace_connected,omitempty"`
	GraceUsed      time.Duration `json:"grace_used,omitempty"`
	DeadlinePaused bool          `json:"deadline_paused,omitempty"`
	PausedSince    *time.Time    `json:"paused_since,omitempty"`
	// FeedSerial is the serial of the release feed the rule was judged by,
	// when it reads the feed (0: it does not, or there was none).
	FeedSerial uint64 `json:"feed_serial,omitempty"`
	// AheadOfFeed says the device runs something newer than the feed knows
	// (a line or release after its newest): the feed functions pass it.
	AheadOfFeed bool `json:"ahead_of_feed,omitempty"`
}

// Evaluate applies every rule of p to the facts of one device. Rules that do
// not apply to the device's platform, or whose when guard is false, are
// left out. When the platform itself is unknown every rule is UNKNOWN.
//
// ctx bounds the evaluation: once it ends, an expression running stops
// (cel-go checks for it every interruptEvery steps of a comprehension) and
// every rule not yet decided is UNKNOWN, saying why. So is every rule left
// once the evaluation has spent the document's cost budget
// (maxDocumentCost); an expression over its own limit (maxExpressionCost)
// is UNKNOWN too. Neither ever gives a PASS.
func Evaluate(ctx context.Context, p *Policy, facts *wardv1.Facts, opts Options) []Result {
	if p == nil {
		return nil
	}
	if facts == nil {
		facts = &wardv1.Facts{}
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	vars := activation(facts, now)
	fv := &feedVal{in: opts.Feed}
	vars[varFeed] = fv
	for name, v := range p.Params {
		vars[paramsVar+"."+name] = v
	}
	platform := facts.GetOs().GetPlatform()
	omitted := omittedFacts(facts)
	ev := &evaluation{ctx: ctx, left: maxDocumentCost}
	results := make([]Result, 0, len(p.Rules))
	for i := range p.Rules {
		r := &p.Rules[i]
		if platform != "" && !slices.Contains(r.Platforms, platform) {
			continue
		}
		res := Result{
			RuleID:      r.ID,
			Title:       pick(r.Titles, opts.Lang),
			Family:      r.Family,
			Severity:    r.Severity,
			Expected:    pick(r.Expected, opts.Lang),
			Remediation: remediation(r, opts.Lang, platform),

			GraceConnected: r.GraceConnected,
		}
		res.setObserved(one("engine.unknown"))
		fv.ahead = false
		if r.readsFeed {
			res.FeedSerial = fv.serial()
		}
		if platform == "" {
			c := facts.GetOs().GetCollection()
			why := reasonTexts(reasonTextMaps(c.GetReasonText()), c.GetReason())
			if len(why) == 0 {
				res.unknown(one("engine.platform_unknown"))
			} else {
				res.unknown(append(one("engine.platform_unknown_why"), why...))
			}
			results = append(results, res)
			continue
		}
		if why := ev.stopped(); why != nil {
			res.unknown(why)
			results = append(results, res)
			continue
		}
		if i := slices.IndexFunc(omitted, r.readsFact); i >= 0 {
			// Facts the agent left out are unknown, never an empty list.
			res.unknown(one("engine.fact_left_out", "fact", omitted[i]))
			results = append(results, res)
			continue
		}
		if r.when != nil {
			applies, why := ev.cond(r.when, vars)
			if why != nil {
				res.unknown(append(one("engine.applies_unknown"), why...))
				results = append(results, res)
				continue
			}
			if !applies {
				continue
			}
		}
		coll := collection(facts, r.Family)
		status := coll.GetStatus()
		if coll == nil || (status != wardv1.CollectionStatus_COLLECTION_STATUS_OK && status != wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL) {
			res.unknown(collectionReason(coll))
			results = append(results, res)
			continue
		}
		ok, why := ev.cond(r.require, vars)
		switch {
		case why != nil:
			if status == wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL {
				why = withCollectionReason(collectionReason(coll), why)
			}
			res.unknown(why)
		case ok:
			res.Status = StatusPass
		default:
			res.Status = StatusFail
			since := now
			if t, seen := opts.FailingSince[r.ID]; seen && !t.IsZero() {
				since = t
			}
			deadline := since.Add(r.Grace)
			res.FailingSince, res.Deadline = &since, &deadline
			res.Overdue = now.After(deadline)
			if r.GraceConnected {
				connectedDeadline(&res, r, opts, now)
			}
		}
		res.setObserved(ev.observed(r, facts, vars, now))
		res.AheadOfFeed = r.readsFeed && fv.ahead
		results = append(results, res)
	}
	return results
}

// setObserved sets the observed messages and their English rendering.
func (res *Result) setObserved(parts []texts.Text) {
	res.ObservedText, res.Observed = parts, texts.Render(texts.Default, parts)
}

// unknown makes the result UNKNOWN for the reason given in messages.
func (res *Result) unknown(why []texts.Text) {
	res.Status, res.ReasonText, res.Reason = StatusUnknown, why, texts.Render(texts.Default, why)
}

// connectedDeadline sets a failing connected-grace rule's deadline: now
// plus what is left of the grace once the connected time used is taken
// off. A paused deadline is not overdue until the grace is used up.
func connectedDeadline(res *Result, r *Rule, opts Options, now time.Time) {
	used := max(opts.GraceUsed[r.ID], 0)
	deadline := now.Add(r.Grace - used)
	res.Deadline = &deadline
	res.GraceConnected, res.GraceUsed = true, used
	res.Overdue = used >= r.Grace
	if at, paused := opts.Paused[r.ID]; paused {
		res.DeadlinePaused = true
		if !at.IsZero() {
			at = at.UTC()
			res.PausedSince = &at
		}
	}
}

// interruptEvery is how many comprehension steps cel-go takes between
// checks of the evaluation's context.
const interruptEvery = 100

// evaluation is one device's evaluation: its context and what is left of
// its cost budget.
type evaluation struct {
	ctx  context.Context
	left uint64
	// halt, once set, is why no further rule is evaluated.
	halt []texts.Text
}

// stopped returns why rules are no longer evaluated, nil while they are.
func (ev *evaluation) stopped() []texts.Text {
	if ev.halt != nil {
		return ev.halt
	}
	if err := ev.ctx.Err(); err != nil {
		ev.halt = append(one("engine.not_evaluated"), stopReason(err)...)
	} else if ev.left == 0 {
		ev.halt = one("engine.budget_spent", "units", fmt.Sprint(maxDocumentCost))
	}
	return ev.halt
}

func stopReason(err error) []texts.Text {
	if errors.Is(err, context.DeadlineExceeded) {
		return one("engine.out_of_time")
	}
	return one("engine.cancelled")
}

// eval runs one program within the context and charges its cost; why is
// set when it gave no value.
func (ev *evaluation) eval(prg cel.Program, vars map[string]any) (ref.Val, []texts.Text) {
	if why := ev.stopped(); why != nil {
		return nil, why
	}
	out, det, err := prg.ContextEval(ev.ctx, vars)
	spent := uint64(maxExpressionCost)
	if det != nil && det.ActualCost() != nil {
		spent = *det.ActualCost()
	}
	ev.left -= min(ev.left, spent)
	switch {
	case err == nil:
		return out, nil
	case ev.ctx.Err() != nil:
		ev.stopped()
		return nil, stopReason(ev.ctx.Err())
	case strings.Contains(err.Error(), "cost limit exceeded"):
		return nil, one("engine.expression_cost", "units", fmt.Sprint(maxExpressionCost))
	}
	return nil, errorReason(err)
}

// cond evaluates a condition: only a boolean result counts, and ok is
// meaningful only when why is nil.
func (ev *evaluation) cond(prg cel.Program, vars map[string]any) (ok bool, why []texts.Text) {
	if prg == nil {
		return false, one("engine.no_expression")
	}
	out, why := ev.eval(prg, vars)
	if why != nil {
		return false, why
	}
	b, isBool := out.(types.Bool)
	if !isBool {
		return false, one("engine.not_a_condition", "type", out.Type().TypeName())
	}
	return bool(b), nil
}

// observed is what the rule's observed expression gives, else (when it
// has none, or it gives an error or nothing) the family's description.
func (ev *evaluation) observed(r *Rule, facts *wardv1.Facts, vars map[string]any, now time.Time) []texts.Text {
	if r.observed != nil {
		if out, why := ev.eval(r.observed, vars); why == nil {
			if parts, ok := observedParts(out); ok {
				return parts
			}
		}
	}
	return defaultObserved(r.Family, facts, now)
}

func collection(f *wardv1.Facts, family string) *wardv1.Collection {
	switch family {
	case FamilyOS:
		return f.GetOs().GetCollection()
	case FamilyDiskEncryption:
		return f.GetDiskEncryption().GetCollection()
	case FamilyPatchLevel:
		return f.GetPatchLevel().GetCollection()
	case FamilyFirewall:
		return f.GetFirewall().GetCollection()
	}
	return nil
}

// collectionReason says why a family's collection is not fully known:
// the collector's own messages (reason_text) when it gave them, else its
// English reason as a technical detail, else what its status says.
func collectionReason(c *wardv1.Collection) []texts.Text {
	if c == nil {
		return one("engine.not_collected")
	}
	if why := reasonTexts(reasonTextMaps(c.GetReasonText()), c.GetReason()); len(why) > 0 {
		return why
	}
	switch c.GetStatus() {
	case wardv1.CollectionStatus_COLLECTION_STATUS_FAILED:
		return one("engine.check_failed")
	case wardv1.CollectionStatus_COLLECTION_STATUS_UNSUPPORTED:
		return one("engine.check_unsupported")
	case wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL:
		return one("engine.partly_collected")
	}
	return one("engine.status_not_known")
}

// withCollectionReason puts a partial collection's reason before why,
// unless why already says it (a rule that names the collection's reason).
func withCollectionReason(coll, why []texts.Text) []texts.Text {
	for i := 0; i+len(coll) <= len(why); i++ {
		if slices.EqualFunc(coll, why[i:i+len(coll)], sameText) {
			return why
		}
	}
	return append(slices.Clip(coll), why...)
}

func sameText(a, b texts.Text) bool { return a.ID == b.ID && maps.Equal(a.Params, b.Params) }

// reasonTextMaps is reason_text as rule variables see it.
func reasonTextMaps(ts []*wardv1.Text) []any {
	out := make([]any, 0, len(ts))
	for _, t := range ts {
		out = append(out, messageMap(t))
	}
	return out
}

// langs returns the languages to try for lang, most specific first, ending
// with English: "fr-CA" → fr, en.
func langs(lang string) []string {
	lang = strings.ToLower(strings.TrimSpace(lang))
	if i := strings.IndexAny(lang, "-_."); i >= 0 {
		lang = lang[:i]
	}
	if lang == "" || lang == DefaultLang {
		return []string{DefaultLang}
	}
	return []string{lang, DefaultLang}
}

func pick(texts map[string]string, lang string) string {
	for _, l := range langs(lang) {
		if s, ok := texts[l]; ok {
			return s
		}
	}
	return ""
}

func remediation(r *Rule, lang, platform string) string {
	for _, l := range langs(lang) {
		if s, ok := r.Remediation[l][platform]; ok {
			return s
		}
	}
	return ""
}
