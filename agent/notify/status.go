package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/wardhq/ward/agent/enroll"
	"github.com/wardhq/ward/agent/i18n"
	"github.com/wardhq/ward/policies"
	"github.com/wardhq/ward/policies/texts"
)

// Format is the version of the Status document.
const Format = 1

// Status is what the service publishes after each round.
type Status struct {
	Format int `json:"format"`
	// DeviceID and Epoch name the enrolment that published the status, so
	// that a file left by a previous installation is not taken for this
	// one's (see BelongsTo).
	DeviceID      string    `json:"device_id,omitempty"`
	Epoch         uint64    `json:"epoch,omitempty"`
	CheckedAt     time.Time `json:"checked_at"`
	Platform      string    `json:"platform"`
	Policy        string    `json:"policy"`
	PolicyVersion int       `json:"policy_version"`
	// Discreet says notifications must carry no detail.
	Discreet bool     `json:"discreet"`
	Results  []Result `json:"results"`
}

// Result is one rule's outcome with its texts.
type Result struct {
	RuleID   string          `json:"rule_id"`
	Family   string          `json:"family"`
	Severity string          `json:"severity"`
	Status   policies.Status `json:"status"`
	// Observed is what the agent saw (English); Reason why it could not
	// decide (UNKNOWN only).
	Observed string `json:"observed"`
	Reason   string `json:"reason,omitempty"`
	// ObservedText and ReasonText are the same as catalogue messages,
	// which the reader's language renders (ObservedIn, ReasonIn). A status
	// written by an older agent has none: then Observed and Reason are
	// shown as they are.
	ObservedText []texts.Text `json:"observed_text,omitempty"`
	ReasonText   []texts.Text `json:"reason_text,omitempty"`
	FailingSince *time.Time   `json:"failing_since,omitempty"`
	Deadline     *time.Time   `json:"deadline,omitempty"`
	// Texts holds the rule's texts per language; English is always there.
	Texts map[string]Texts `json:"texts"`
	// Waiver, on a FAIL, is the organisation's acceptance of it: until it
	// expires the rule is shown as accepted and not prompted about. The
	// status stays FAIL (a waived rule is never a pass).
	Waiver *Waiver `json:"waiver,omitempty"`
	// Connected grace (docs/connectivity.md): see connected.go.
	Connected
}

// Waiver is a failing rule the organisation accepted until ExpiresAt.
type Waiver struct {
	RuleID    string    `json:"rule_id,omitempty"`
	Reason    string    `json:"reason"`
	ExpiresAt time.Time `json:"expires_at"`
}

// WaivedAt reports whether the result is a FAIL accepted by a waiver still
// running at now. An expired waiver makes the rule prompt again.
func (r Result) WaivedAt(now time.Time) bool {
	return r.Status == policies.StatusFail && r.Waiver != nil && now.Before(r.Waiver.ExpiresAt)
}

// ApplyWaivers marks each FAIL that a waiver in ws, active at the status's
// check time, accepts; of several for one rule, the one lasting longest.
func (st *Status) ApplyWaivers(ws []Waiver) {
	for i := range st.Results {
		r := &st.Results[i]
		if r.Status != policies.StatusFail {
			continue
		}
		for _, w := range ws {
			if w.RuleID != r.RuleID || !st.CheckedAt.Before(w.ExpiresAt) {
				continue
			}
			if r.Waiver == nil || w.ExpiresAt.After(r.Waiver.ExpiresAt) {
				r.Waiver = &Waiver{Reason: w.Reason, ExpiresAt: w.ExpiresAt.UTC()}
			}
		}
	}
}

// Texts are a rule's words for the user in one language.
type Texts struct {
	Title string `json:"title"`
	// Problem says in plain words what is wrong when the rule fails
	// ("Your disk is not encrypted"); "" when the policy gives none.
	Problem  string `json:"problem,omitempty"`
	Expected string `json:"expected"`
	Why      string `json:"why,omitempty"`
	// Steps is the remediation for this device's platform.
	Steps string `json:"steps"`
}

// NewStatus describes one round's results for users: it adds each rule's
// texts, in every language the policy gives, to the results.
func NewStatus(pol *policies.Policy, platform string, results []policies.Result, checkedAt time.Time) Status {
	st := Status{Format: Format, CheckedAt: checkedAt.UTC(), Platform: platform,
		Policy: pol.Name, PolicyVersion: pol.Version, Discreet: pol.Discreet, Results: []Result{}}
	for _, r := range results {
		out := Result{RuleID: r.RuleID, Family: r.Family, Severity: r.Severity, Status: r.Status,
			Observed: r.Observed, Reason: r.Reason, ObservedText: r.ObservedText, ReasonText: r.ReasonText, FailingSince: r.FailingSince, Deadline: r.Deadline,
			Texts: map[string]Texts{i18n.Default: {Title: r.Title, Expected: r.Expected, Steps: r.Remediation}}}
		if i := slices.IndexFunc(pol.Rules, func(rule policies.Rule) bool { return rule.ID == r.RuleID }); i >= 0 {
			out.Texts = ruleTexts(&pol.Rules[i], platform)
		}
		out.Connected = connected(r, checkedAt)
		st.Results = append(st.Results, out)
	}
	return st
}

// ruleTexts gathers a rule's texts per language, each falling back to
// English.
func ruleTexts(r *policies.Rule, platform string) map[string]Texts {
	langs := map[string]bool{i18n.Default: true}
	for _, m := range []map[string]string{r.Titles, r.Expected, r.Problem, r.Why} {
		for l := range m {
			langs[l] = true
		}
	}
	for l := range r.Remediation {
		langs[l] = true
	}
	pick := func(m map[string]string, l string) string {
		if s, ok := m[l]; ok {
			return s
		}
		return m[i18n.Default]
	}
	out := map[string]Texts{}
	for l := range langs {
		steps, ok := r.Remediation[l][platform]
		if !ok {
			steps = r.Remediation[i18n.Default][platform]
		}
		out[l] = Texts{Title: pick(r.Titles, l), Problem: pick(r.Problem, l), Expected: pick(r.Expected, l), Why: pick(r.Why, l), Steps: steps}
	}
	return out
}

// In returns the result's texts in lang, falling back to English.
func (r Result) In(lang string) Texts {
	if t, ok := r.Texts[i18n.Normalize(lang)]; ok {
		return t
	}
	return r.Texts[i18n.Default]
}

// ObservedIn is what the agent saw, in lang.
func (r Result) ObservedIn(lang string) string { return Words(lang, r.ObservedText, r.Observed) }

// ReasonIn is why the agent could not decide, in lang; "" when it gave no
// reason.
func (r Result) ReasonIn(lang string) string { return Words(lang, r.ReasonText, r.Reason) }

// Words renders catalogue messages in lang (falling back to English for a
// language the catalogue lacks), or, when there are none (a result from an
// older agent, or a policy's own English literal), returns english as it
// is.
func Words(lang string, parts []texts.Text, english string) string {
	if len(parts) == 0 {
		return english
	}
	return texts.Render(i18n.Normalize(lang), parts)
}

// Heading is how a failing item is titled in lang: its problem in plain
// words, in lang or else in English, or else (a policy that gives no
// problem) the rule's title.
func (t Texts) Heading() string {
	if t.Problem != "" {
		return t.Problem
	}
	return t.Title
}

// Overdue reports whether the result's deadline is before now; a
// connected-grace deadline is also overdue once its grace is used up, and,
// paused, only then.
func (r Result) Overdue(now time.Time) bool {
	if r.Status != policies.StatusFail || r.Deadline == nil {
		return false
	}
	if r.GraceConnected && (r.DeadlinePaused || r.GraceLeft <= 0) {
		return r.GraceLeft <= 0
	}
	return now.After(*r.Deadline)
}

// Enrolment names one installation's enrolment: the device and the epoch
// the collector assigned it.
type Enrolment struct {
	DeviceID string `json:"device_id"`
	Epoch    uint64 `json:"epoch,omitempty"`
}

// ErrOtherEnrolment is returned for a saved status that belongs to
// another enrolment than this device's current one.
var ErrOtherEnrolment = errors.New("the saved status belongs to another enrolment")

// ReadEnrolment reads the device id and epoch from the state directory's
// device.json. It wraps fs.ErrNotExist when the device is not enrolled.
func ReadEnrolment(stateDir string) (Enrolment, error) {
	data, err := readFile(filepath.Join(stateDir, enroll.DeviceFile))
	if err != nil {
		return Enrolment{}, fmt.Errorf("enrolment: %w", err)
	}
	var e Enrolment
	if err := json.Unmarshal(data, &e); err != nil {
		return Enrolment{}, fmt.Errorf("enrolment: %s: %w", enroll.DeviceFile, err)
	}
	if e.DeviceID == "" {
		return Enrolment{}, fmt.Errorf("enrolment: %s names no device", enroll.DeviceFile)
	}
	return e, nil
}

// BelongsTo reports whether the status was published by enrolment e: the
// same device and the same epoch. A status that names no device (written
// before statuses did) belongs to no enrolment.
func (st Status) BelongsTo(e Enrolment) bool {
	return st.DeviceID != "" && st.DeviceID == e.DeviceID && st.Epoch == e.Epoch
}
