package dashboard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wardhq/ward/collector/server"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/token"
	"github.com/wardhq/ward/policies"
)

// groupPolicy is the policy a group is held to: its own, or the embedded
// default.
type groupPolicy struct {
	Group    string
	Name     string
	Version  int
	Embedded bool
	Updated  time.Time
	Policy   *policies.Policy
	// Hash starts the stored document's SHA-256 ("" for the embedded one).
	Hash string
}

func (h *handler) groupPolicies(ctx context.Context) ([]groupPolicy, error) {
	groups, err := h.st.Groups(ctx)
	if err != nil {
		return nil, err
	}
	stored, err := h.st.Policies(ctx)
	if err != nil {
		return nil, err
	}
	byGroup := map[string]store.GroupPolicy{}
	for _, p := range stored {
		byGroup[p.Group] = p
		if !slices.Contains(groups, p.Group) {
			groups = append(groups, p.Group)
		}
	}
	slices.Sort(groups)
	var out []groupPolicy
	for _, g := range groups {
		gp, err := h.policyOf(g, byGroup)
		if err != nil {
			return nil, err
		}
		out = append(out, gp)
	}
	return out, nil
}

func (h *handler) policyOf(group string, byGroup map[string]store.GroupPolicy) (groupPolicy, error) {
	if sp, ok := byGroup[group]; ok {
		p, err := h.parsed.parse("group "+group, sp.Document, func() (*policies.Policy, error) { return policies.Parse("group "+group, sp.Document) })
		if err != nil {
			return groupPolicy{}, fmt.Errorf("stored policy of group %q: %w", group, err)
		}
		return groupPolicy{Group: group, Name: sp.Name, Version: sp.Version, Updated: sp.UpdatedAt, Policy: p, Hash: docHash(sp.Document)}, nil
	}
	p, err := h.parsed.parse("embedded", []byte(server.DefaultPolicy), func() (*policies.Policy, error) { return policies.Embedded(server.DefaultPolicy) })
	if err != nil {
		return groupPolicy{}, err
	}
	return groupPolicy{Group: group, Name: p.Name, Version: p.Version, Embedded: true, Policy: p}, nil
}

// parsedPolicies keeps the policies the pages show, parsed: parsing
// compiles every rule's CEL expression (some 25 ms a policy), and the
// policies page shows every group's. Keyed by name and document, so a
// new document is parsed anew; at most maxParsed are kept.
type parsedPolicies struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*policies.Policy
}

const maxParsed = 64

func (c *parsedPolicies) parse(name string, doc []byte, parse func() (*policies.Policy, error)) (*policies.Policy, error) {
	key := sha256.Sum256(append([]byte(name+"\x00"), doc...))
	c.mu.Lock()
	p, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := parse()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxParsed {
		c.m = map[[sha256.Size]byte]*policies.Policy{}
	}
	c.m[key] = p
	c.mu.Unlock()
	return p, nil
}

// docHash is the start of a policy document's SHA-256, as policy list
// prints it: enough to tell two contents apart at a glance.
func docHash(doc []byte) string {
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:6])
}

func (h *handler) policyFor(ctx context.Context, group string) (groupPolicy, error) {
	sp, err := h.st.Policy(ctx, group)
	byGroup := map[string]store.GroupPolicy{}
	switch {
	case err == nil:
		byGroup[group] = sp
	case !errors.Is(err, store.ErrNotFound):
		return groupPolicy{}, err
	}
	return h.policyOf(group, byGroup)
}

// Devices.

const pageSize = 50

type deviceRow struct {
	store.Device
	Status store.DeviceStatus
	// Cert is the certificate's state (store.Device.CertState), CertLeft
	// how long it has left, for an expiring one.
	Cert, CertLeft string
}

func newDeviceRow(d store.Device, now time.Time, staleAfter time.Duration) deviceRow {
	r := deviceRow{Device: d, Status: d.Status(now, staleAfter), Cert: d.CertState(now)}
	if r.Cert == "expiring" {
		r.CertLeft = ago(d.CertNotAfter.Sub(now))
	}
	return r
}

// ago is a duration in whole days, or hours under a day.
func ago(d time.Duration) string {
	if d < 24*time.Hour {
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// duplicatesOf returns the likely duplicates of a non-revoked device.
func (h *handler) duplicatesOf(ctx context.Context, dev store.Device) ([]store.Device, error) {
	if dev.Revoked() || dev.MachineID == "" {
		return nil, nil
	}
	sets, err := h.st.Duplicates(ctx)
	if err != nil {
		return nil, err
	}
	for _, set := range sets {
		if set.Group != dev.Group || set.MachineID != dev.MachineID {
			continue
		}
		var out []store.Device
		for _, o := range set.Devices {
			if o.ID != dev.ID {
				out = append(out, o)
			}
		}
		return out, nil
	}
	return nil, nil
}

// deviceRetire retires a device (one of likely duplicates) and returns to
// the page it was retired from.
func (h *handler) deviceRetire(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	dev, err := h.st.Device(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "Device")
		return
	} else if err != nil {
		h.serverError(w, r, err)
		return
	}
	if err := h.st.RevokeDeviceAudited(r.Context(), id, true, h.entry(r, "device.retire", id, "hostname "+dev.Hostname+", group "+dev.Group)); errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "Device")
		return
	} else if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.cache.clear()
	h.recordRevoke(r.Context(), id, session(r).User, true)
	back := id
	if from := r.PostFormValue("from"); from != "" {
		if _, err := h.st.Device(r.Context(), from); err == nil {
			back = from
		}
	}
	http.Redirect(w, r, "/devices/"+url.PathEscape(back)+"?retired="+url.QueryEscape(id), http.StatusSeeOther)
}

// Policies.

type policiesData struct {
	Groups   []groupPolicy
	Problems []string
	WhatIf   *whatIf
	Document string
	Group    string
}

func (h *handler) policiesPage(w http.ResponseWriter, r *http.Request) {
	h.renderPolicies(w, r, http.StatusOK, policiesData{}, "")
}

func (h *handler) renderPolicies(w http.ResponseWriter, r *http.Request, status int, d policiesData, notice string) {
	gps, err := h.groupPolicies(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	d.Groups = gps
	w.WriteHeader(status)
	h.render(w, r, "policies", page{Title: "Policies", Nav: "policies", Data: d, Notice: notice})
}

// policyUpload validates a draft and then either applies it to a group
// (action=apply) or evaluates it against every device's latest facts
// (action=whatif).
func (h *handler) policyUpload(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	se := session(r)
	group := strings.TrimSpace(r.PostFormValue("group"))
	doc := []byte(r.PostFormValue("document"))
	name := "draft.yaml"
	if f, fh, err := r.FormFile("file"); err == nil {
		b, err := io.ReadAll(io.LimitReader(f, 1<<20))
		f.Close()
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		if len(b) > 0 {
			doc, name = b, fh.Filename
		}
	}
	d := policiesData{Document: string(doc), Group: group}
	fail := func(problems ...string) {
		d.Problems = problems
		h.renderPolicies(w, r, http.StatusUnprocessableEntity, d, "")
	}
	if group == "" || len(group) > 64 {
		fail("group must be 1 to 64 bytes")
		return
	}
	p, err := policies.Parse(name, doc)
	if err != nil {
		var ve *policies.ValidationError
		if errors.As(err, &ve) {
			var ps []string
			for _, pr := range ve.Problems {
				ps = append(ps, pr.String())
			}
			fail(ps...)
			return
		}
		fail(err.Error())
		return
	}
	if r.PostFormValue("action") == "whatif" {
		// Evaluating a large group may take longer than a page may.
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(WhatIfWriteTimeout)) // unsupported only in tests (httptest)
		wi, err := h.whatIf(ctx, group, p)
		if err != nil {
			h.serverError(w, r, err)
			return
		}
		d.WhatIf = wi
		h.audit(ctx, se.User, "policy.what-if", group, fmt.Sprintf("%s v%d: %d of %d devices would newly fail", p.Name, p.Version, len(wi.Newly), wi.Evaluated))
		h.renderPolicies(w, r, http.StatusOK, d, "")
		return
	}
	cur, err := h.policyFor(ctx, group)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	// The same rule as `ward-collector policy set`: a name and version
	// mean one document; the version never goes back.
	var stored *store.GroupPolicy
	switch sp, err := h.st.Policy(ctx, group); {
	case err == nil:
		stored = &sp
	case !errors.Is(err, store.ErrNotFound):
		h.serverError(w, r, err)
		return
	}
	next := store.GroupPolicy{Group: group, Name: p.Name, Version: p.Version, Document: doc, UpdatedAt: h.now()}
	unchanged, err := store.CheckPolicyChange(stored, next)
	if err != nil {
		fail(name + ": " + strings.TrimPrefix(err.Error(), store.ErrPolicyConflict.Error()+": "))
		return
	}
	if unchanged {
		h.renderPolicies(w, r, http.StatusOK, policiesData{}, fmt.Sprintf("Group %s already uses policy %s version %d with this content: nothing changed.", group, p.Name, p.Version))
		return
	}
	if err := h.st.SetPolicyAudited(ctx, next, h.entry(r, "policy.apply", group, fmt.Sprintf("%s version %d (was %s version %d)", p.Name, p.Version, cur.Name, cur.Version))); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.cache.clear()
	h.renderPolicies(w, r, http.StatusOK, policiesData{}, fmt.Sprintf("Group %s now uses policy %s version %d.", group, p.Name, p.Version))
}

// Waivers.

type waiverRow struct {
	store.Waiver
	State string
	// Hostname is the device's (admin.go's waiverHosts).
	Hostname string
}

func (h *handler) waivers(w http.ResponseWriter, r *http.Request) {
	h.renderWaivers(w, r, http.StatusOK, "", nil)
}

func (h *handler) renderWaivers(w http.ResponseWriter, r *http.Request, status int, problem string, form map[string]string) {
	ws, err := h.st.Waivers(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	hosts, err := h.waiverHosts(r, ws)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	now := h.now()
	var rows []waiverRow
	for _, wv := range ws {
		state := "active"
		switch {
		case wv.RevokedAt != nil && !now.Before(*wv.RevokedAt):
			state = "revoked"
		case !now.Before(wv.ExpiresAt):
			state = "expired"
		}
		rows = append(rows, waiverRow{wv, state, hosts[wv.DeviceID]})
	}
	if form == nil {
		form = map[string]string{"device": r.URL.Query().Get("device"), "rule": r.URL.Query().Get("rule")}
	}
	notice := ""
	if id := r.URL.Query().Get("granted"); id != "" {
		notice = "Waiver " + id + " granted."
	}
	w.WriteHeader(status)
	h.render(w, r, "waivers", page{Title: "Waivers", Nav: "waivers", Data: rows, Error: problem, Form: form, Notice: notice})
}

func (h *handler) waiverCreate(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.now()
	form := map[string]string{}
	for _, k := range []string{"device", "group", "rule", "reason", "expires"} {
		form[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	bad := func(msg string) { h.renderWaivers(w, r, http.StatusUnprocessableEntity, msg, form) }
	wv := store.Waiver{ID: token.NewID("wvr_"), DeviceID: form["device"], Group: form["group"], RuleID: form["rule"], Reason: form["reason"], CreatedBy: session(r).User, CreatedAt: now}
	switch {
	case (wv.DeviceID == "") == (wv.Group == ""):
		bad("Give either a device id or a group, not both.")
		return
	case wv.RuleID == "":
		bad("Give the rule id to waive.")
		return
	case wv.Reason == "":
		bad("Give a reason: the audit log keeps it.")
		return
	}
	exp, err := parseWhen(form["expires"])
	if err != nil || !exp.After(now) {
		bad("Give an expiry date in the future (2006-01-02).")
		return
	}
	if exp.Sub(now) > 366*24*time.Hour {
		bad("A waiver lasts at most a year.")
		return
	}
	wv.ExpiresAt = exp
	host := ""
	if wv.DeviceID != "" {
		// An id, or a hostname one device has (admin.go).
		d, err := ResolveDevice(ctx, h.st, wv.DeviceID, now)
		switch {
		case errors.Is(err, store.ErrNotFound):
			bad("No device " + wv.DeviceID + " (give its id or its hostname).")
			return
		case errors.Is(err, ErrAmbiguousHost):
			bad(err.Error() + ".")
			return
		case err != nil:
			h.serverError(w, r, err)
			return
		}
		wv.DeviceID, host = d.ID, d.Hostname
	}
	target := "device " + wv.DeviceID + " (" + host + ")"
	if wv.Group != "" {
		target = "group " + wv.Group
	}
	if err := h.st.CreateWaiverAudited(ctx, wv, h.entry(r, "waiver.create", target+" rule "+wv.RuleID, fmt.Sprintf("%s until %s: %s", wv.ID, exp.Format(time.RFC3339), wv.Reason))); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.cache.clear()
	http.Redirect(w, r, "/waivers?granted="+url.QueryEscape(wv.ID), http.StatusSeeOther)
}

func (h *handler) waiverRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.st.RevokeWaiverAudited(r.Context(), id, h.entry(r, "waiver.revoke", id, "")); errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "Waiver")
		return
	} else if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.cache.clear()
	http.Redirect(w, r, "/waivers", http.StatusSeeOther)
}

// WhatIfWriteTimeout is how long a what-if may take to answer, past the
// server's WriteTimeout for pages.
const WhatIfWriteTimeout = 5 * time.Minute

// Exports.

func (h *handler) export(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format := q.Get("format")
	form := map[string]string{"format": format, "as_of": q.Get("as_of")}
	// Without a format: the form. A refusal is the form again, with the
	// reason, as a 400 (a script sees the status, a person the reason).
	refuse := func(msg string) {
		w.WriteHeader(http.StatusBadRequest)
		h.render(w, r, "export", page{Title: "Export", Nav: "export", Error: msg, Form: form})
	}
	if format == "" && len(q) == 0 {
		h.render(w, r, "export", page{Title: "Export", Nav: "export", Form: form})
		return
	}
	if format != "csv" && format != "json" {
		refuse("format must be csv or json")
		return
	}
	now := h.now()
	var at time.Time
	if s := q.Get("as_of"); s != "" {
		t, err := ParseAsOf(s, now)
		if err != nil {
			refuse("as_of " + s + ": " + err.Error())
			return
		}
		at = t
	}
	// An export of a large fleet may take longer than the server's
	// WriteTimeout allows a page: this one sets its own deadline.
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(ExportWriteTimeout)) // unsupported only in tests (httptest)
	e, err := BuildExport(r.Context(), h.st, ExportOptions{Now: now, AsOf: at, StaleAfter: h.cfg.StaleAfter, Collector: h.cfg.Collector})
	if errors.Is(err, ErrBeforeFirstReport) {
		refuse("as_of " + q.Get("as_of") + ": " + err.Error() + " (the collector's history starts with its first report, or where retention pruned it); choose a later date")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, e.FileName(format)))
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	if err := e.Write(w, format); err != nil {
		h.log.Error("export", "err", err)
	}
}

// Tokens.

type tokenRow struct {
	store.Token
	State string
}

func (h *handler) tokens(w http.ResponseWriter, r *http.Request) {
	h.renderTokens(w, r, http.StatusOK, "", "")
}

func (h *handler) renderTokens(w http.ResponseWriter, r *http.Request, status int, problem, notice string) {
	ts, err := h.st.Tokens(r.Context())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	now := h.now()
	var rows []tokenRow
	for _, t := range ts {
		rows = append(rows, tokenRow{t, t.State(now)})
	}
	w.WriteHeader(status)
	h.render(w, r, "tokens", page{Title: "Enrolment tokens", Nav: "tokens", Data: rows, Error: problem, Notice: notice})
}

func (h *handler) tokenCreate(w http.ResponseWriter, r *http.Request) {
	group := strings.TrimSpace(r.PostFormValue("group"))
	uses, err := strconv.Atoi(r.PostFormValue("uses"))
	if err != nil {
		h.renderTokens(w, r, http.StatusUnprocessableEntity, "uses must be a number", "")
		return
	}
	ttl, err := time.ParseDuration(r.PostFormValue("ttl"))
	if err != nil {
		h.renderTokens(w, r, http.StatusUnprocessableEntity, "ttl must be a duration such as 24h", "")
		return
	}
	// The token and its audit entry are one write (token.Audited).
	audited := token.Audited(h.st, func(t store.Token) store.AuditEntry {
		return h.entry(r, "token.create", t.ID, fmt.Sprintf("group %s, %d uses, expires %s", t.Group, t.Uses, t.ExpiresAt.Format(time.RFC3339)))
	})
	plain, _, err := token.Create(r.Context(), audited, group, uses, ttl, h.now())
	if err != nil {
		h.renderTokens(w, r, http.StatusUnprocessableEntity, err.Error(), "")
		return
	}
	h.cache.clear()
	h.renderTokens(w, r, http.StatusOK, "", "New token (shown once, copy it now): "+plain)
}

func (h *handler) tokenRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.st.RevokeTokenAudited(r.Context(), id, h.entry(r, "token.revoke", id, "")); errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "Token")
		return
	} else if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.cache.clear()
	http.Redirect(w, r, "/tokens", http.StatusSeeOther)
}
