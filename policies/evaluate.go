package policies

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"

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
	Reason       string     `json:"reason,omitempty"`
	FailingSince *time.Time `json:"failing_since,omitempty"`
	Deadline     *time.Time `json:"deadline,omitempty"`
	Overdue      bool       `json:"overdue,omitempty"`
	// GraceConnected says only connected time counts against the rule's
	// grace; on a FAIL, GraceUsed is the connected time counted so far and
	// DeadlinePaused says the deadline is not running (no connection this
	// round) since PausedSince, the last time there was one (nil: none
	// since the rule started failing).
	GraceConnected bool          `json:"grace_connected,omitempty"`
	GraceUsed      time.Duration `json:"grace_used,omitempty"`
	DeadlinePaused bool          `json:"deadline_paused,omitempty"`
	PausedSince    *time.Time    `json:"paused_since,omitempty"`
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
			Observed:    "unknown",

			GraceConnected: r.GraceConnected,
		}
		if platform == "" {
			res.Status = StatusUnknown
			res.Reason = "cannot tell which platform this device runs"
			if why := facts.GetOs().GetCollection().GetReason(); why != "" {
				res.Reason += ": " + why
			}
			results = append(results, res)
			continue
		}
		if why := ev.stopped(); why != "" {
			res.Status, res.Reason = StatusUnknown, why
			results = append(results, res)
			continue
		}
		if i := slices.IndexFunc(omitted, r.readsFact); i >= 0 {
			// Facts the agent left out are unknown, never an empty list.
			res.Status, res.Reason = StatusUnknown, fmt.Sprintf("the agent left %s out of its report: the policy it evaluated does not read it", omitted[i])
			results = append(results, res)
			continue
		}
		if r.when != nil {
			applies, why := ev.cond(r.when, vars)
			if why != "" {
				res.Status, res.Reason = StatusUnknown, "cannot tell whether the rule applies: "+why
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
			res.Status, res.Reason = StatusUnknown, collectionReason(r.Family, coll)
			results = append(results, res)
			continue
		}
		ok, why := ev.cond(r.require, vars)
		switch {
		case why != "":
			res.Status, res.Reason = StatusUnknown, why
			if status == wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL {
				res.Reason = collectionReason(r.Family, coll) + "; " + why
			}
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
		res.Observed = ev.observed(r, facts, vars, now)
		results = append(results, res)
	}
	return results
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
	halt string
}

// stopped returns why rules are no longer evaluated, "" while they are.
func (ev *evaluation) stopped() string {
	if ev.halt != "" {
		return ev.halt
	}
	if err := ev.ctx.Err(); err != nil {
		ev.halt = "not evaluated: " + stopReason(err)
	} else if ev.left == 0 {
		ev.halt = fmt.Sprintf("not evaluated: the evaluation spent the policy's budget of %d cost units for one device "+
			"(see the limits in docs/policies.md)", maxDocumentCost)
	}
	return ev.halt
}

func stopReason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "the evaluation ran out of time (deadline exceeded)"
	}
	return "the evaluation was cancelled"
}

// eval runs one program within the context and charges its cost; why is
// set when it gave no value.
func (ev *evaluation) eval(prg cel.Program, vars map[string]any) (ref.Val, string) {
	if why := ev.stopped(); why != "" {
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
		return out, ""
	case ev.ctx.Err() != nil:
		ev.stopped()
		return nil, stopReason(ev.ctx.Err())
	case strings.Contains(err.Error(), "cost limit exceeded"):
		return nil, fmt.Sprintf("the expression went over its limit of %d cost units (see the limits in docs/policies.md)", maxExpressionCost)
	}
	return nil, errorReason(err)
}

// cond evaluates a condition: only a boolean result counts, and ok is
// meaningful only when why is empty.
func (ev *evaluation) cond(prg cel.Program, vars map[string]any) (ok bool, why string) {
	if prg == nil {
		return false, "the rule has no compiled expression"
	}
	out, why := ev.eval(prg, vars)
	if why != "" {
		return false, why
	}
	b, isBool := out.(types.Bool)
	if !isBool {
		return false, "the expression gave " + out.Type().TypeName() + ", not true or false"
	}
	return bool(b), ""
}

func (ev *evaluation) observed(r *Rule, facts *wardv1.Facts, vars map[string]any, now time.Time) string {
	if r.observed != nil {
		if out, why := ev.eval(r.observed, vars); why == "" {
			if s, ok := out.(types.String); ok && strings.TrimSpace(string(s)) != "" {
				return string(s)
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

var familyWords = map[string]string{
	FamilyOS:             "operating system",
	FamilyDiskEncryption: "disk encryption",
	FamilyPatchLevel:     "update",
	FamilyFirewall:       "firewall",
}

func collectionReason(family string, c *wardv1.Collection) string {
	words := familyWords[family]
	if c == nil {
		return "the " + words + " facts were not collected"
	}
	why := c.GetReason()
	if why == "" {
		switch c.GetStatus() {
		case wardv1.CollectionStatus_COLLECTION_STATUS_FAILED:
			why = "the " + words + " check failed without saying why"
		case wardv1.CollectionStatus_COLLECTION_STATUS_UNSUPPORTED:
			why = "the " + words + " check is not supported on this device"
		case wardv1.CollectionStatus_COLLECTION_STATUS_PARTIAL:
			why = "some " + words + " facts were not collected"
		default:
			why = "the " + words + " collection status is not known"
		}
	}
	return why
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
