package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wardhq/ward/collector/store"
)

// Administration: users, device revocation, token rollouts and the audit
// log's filters. Every handler here is behind admin (the role checked on
// the server for each request, CSRF on every POST), and every change is
// written with its audit entry in one transaction by store.Admin.

// ValidUserName says what is wrong with a new user's name, or "". A ":"
// is kept for the CLI's actors ("cli:root"), so no dashboard user can be
// taken for one in the audit log.
func ValidUserName(name string) string {
	switch {
	case name == "" || len(name) > MaxUserName:
		return fmt.Sprintf("A user name is 1 to %d bytes.", MaxUserName)
	case strings.ContainsAny(name, " \t\r\n:/?#%"):
		return "A user name has no spaces and none of : / ? # %."
	}
	return ""
}

type usersData struct {
	Users []store.UserInfo
	Me    string
}

func (h *handler) users(w http.ResponseWriter, r *http.Request) {
	h.renderUsers(w, r, http.StatusOK, "", r.URL.Query().Get("done"), nil)
}

func (h *handler) renderUsers(w http.ResponseWriter, r *http.Request, status int, problem, notice string, form map[string]string) {
	us, err := h.st.UserList(r.Context(), h.now())
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	w.WriteHeader(status)
	h.render(w, r, "users", page{Title: "Users", Nav: "users", Data: usersData{Users: us, Me: session(r).User}, Error: problem, Notice: notice, Form: form})
}

// afterUserChange returns to the users page with a notice, or to the
// sign-in page when the change ended the admin's own session.
func (h *handler) afterUserChange(w http.ResponseWriter, r *http.Request, name, notice string, endsOwn bool) {
	if endsOwn && name == session(r).User {
		h.setCookie(w, sessionCookie, "", -1)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/users?done="+url.QueryEscape(notice), http.StatusSeeOther)
}

// userProblem renders the users page with the store's refusal of a
// change, or reports an internal error.
func (h *handler) userProblem(w http.ResponseWriter, r *http.Request, name string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		h.notFound(w, r, "User "+name)
	case errors.Is(err, store.ErrLastAdmin):
		h.renderUsers(w, r, http.StatusConflict, name+" is the only admin: the dashboard must keep one. Make another user admin first.", "", nil)
	default:
		h.serverError(w, r, err)
	}
}

func (h *handler) entry(r *http.Request, action, target, detail string) store.AuditEntry {
	return store.AuditEntry{At: h.now(), Actor: session(r).User, Action: action, Target: target, Detail: detail}
}

func (h *handler) userAdd(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	role := r.PostFormValue("role")
	form := map[string]string{"name": name, "role": role}
	bad := func(msg string) { h.renderUsers(w, r, http.StatusUnprocessableEntity, msg, "", form) }
	if p := ValidUserName(name); p != "" {
		bad(p)
		return
	}
	if role != store.RoleAdmin && role != store.RoleViewer {
		bad("The role is admin or viewer.")
		return
	}
	password, generated := r.PostFormValue("password"), false
	if password == "" {
		password, generated = GeneratePassword(), true
	}
	hash, err := HashPassword(password)
	if err != nil {
		bad(err.Error())
		return
	}
	err = h.st.CreateUserAudited(r.Context(), store.User{Name: name, Role: role, Hash: hash, CreatedAt: h.now()}, h.entry(r, "user.add", name, "role "+role))
	if errors.Is(err, store.ErrExists) {
		bad("There is already a user " + name + ".")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	notice := "Created " + role + " user " + name + "."
	if generated {
		// Shown on this response only, never in a URL.
		notice += " Password (shown once, copy it now): " + password
	}
	h.renderUsers(w, r, http.StatusOK, "", notice, nil)
}

func (h *handler) userRole(w http.ResponseWriter, r *http.Request) {
	name, role := r.PathValue("name"), r.PostFormValue("role")
	if role != store.RoleAdmin && role != store.RoleViewer {
		h.renderUsers(w, r, http.StatusUnprocessableEntity, "The role is admin or viewer.", "", nil)
		return
	}
	u, err := h.st.User(r.Context(), name)
	if err != nil {
		h.userProblem(w, r, name, err)
		return
	}
	changed, err := h.st.SetUserRole(r.Context(), name, role, h.entry(r, "user.set-role", name, u.Role+" → "+role))
	if err != nil {
		h.userProblem(w, r, name, err)
		return
	}
	h.cache.clear()
	notice := name + " is now " + role + "."
	if !changed {
		notice = name + " is already " + role + ": nothing changed."
	}
	if name == session(r).User && role != store.RoleAdmin {
		// No admin page is theirs to return to.
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	h.afterUserChange(w, r, name, notice, false)
}

func (h *handler) userPassword(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	password := GeneratePassword()
	hash, err := HashPassword(password)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if err := h.st.SetUserPassword(r.Context(), name, hash, h.entry(r, "user.reset-password", name, "new password; sessions ended")); err != nil {
		h.userProblem(w, r, name, err)
		return
	}
	if name == session(r).User {
		h.afterUserChange(w, r, name, "", true)
		return
	}
	h.renderUsers(w, r, http.StatusOK, "", "New password for "+name+" (shown once, copy it now; their sessions are ended): "+password, nil)
}

func (h *handler) userEndSessions(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	n, err := h.st.EndSessions(r.Context(), name, h.entry(r, "user.end-sessions", name, "every session ended"))
	if err != nil {
		h.userProblem(w, r, name, err)
		return
	}
	h.afterUserChange(w, r, name, fmt.Sprintf("Ended %d session(s) of %s.", n, name), true)
}

// confirmData is the confirmation page of a change that cannot be undone.
type confirmData struct {
	// What is asked, Consequences what follows, Word what to type.
	What, Word, Action, Button string
	Consequences               []string
	Back                       string
}

func (h *handler) confirm(w http.ResponseWriter, r *http.Request, status int, title, problem string, d confirmData) {
	w.WriteHeader(status)
	h.render(w, r, "confirm", page{Title: title, Nav: "", Error: problem, Data: d})
}

func (h *handler) userRemoveForm(w http.ResponseWriter, r *http.Request) {
	h.userRemoveConfirm(w, r, http.StatusOK, "")
}

func (h *handler) userRemoveConfirm(w http.ResponseWriter, r *http.Request, status int, problem string) {
	name := r.PathValue("name")
	u, err := h.st.User(r.Context(), name)
	if err != nil {
		h.userProblem(w, r, name, err)
		return
	}
	h.confirm(w, r, status, "Remove user "+name, problem, confirmData{
		What:   fmt.Sprintf("Remove the %s user %s?", u.Role, name),
		Word:   name,
		Action: "/users/" + url.PathEscape(name) + "/remove",
		Button: "Remove " + name,
		Consequences: []string{
			"They can no longer sign in, and every session of theirs ends now.",
			"Their entries in the audit log stay.",
		},
		Back: "/users",
	})
}

func (h *handler) userRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if r.PostFormValue("confirm") != name {
		h.userRemoveConfirm(w, r, http.StatusUnprocessableEntity, "Type the user name to confirm.")
		return
	}
	u, err := h.st.User(r.Context(), name)
	if err != nil {
		h.userProblem(w, r, name, err)
		return
	}
	if err := h.st.RemoveUser(r.Context(), name, h.entry(r, "user.remove", name, "was "+u.Role)); err != nil {
		h.userProblem(w, r, name, err)
		return
	}
	h.afterUserChange(w, r, name, "Removed "+u.Role+" user "+name+".", true)
}

// Device revocation.

func (h *handler) deviceRevokeForm(w http.ResponseWriter, r *http.Request) {
	h.deviceRevokeConfirm(w, r, http.StatusOK, "")
}

func (h *handler) deviceRevokeConfirm(w http.ResponseWriter, r *http.Request, status int, problem string) {
	dev, err := h.st.Device(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "Device")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if dev.Revoked() {
		http.Redirect(w, r, "/devices/"+url.PathEscape(dev.ID), http.StatusSeeOther)
		return
	}
	h.confirm(w, r, status, "Revoke "+dev.Hostname, problem, confirmData{
		What:   fmt.Sprintf("Revoke device %s (%s, group %s)?", dev.Hostname, dev.ID, dev.Group),
		Word:   dev.Hostname,
		Action: "/devices/" + url.PathEscape(dev.ID) + "/revoke",
		Button: "Revoke " + dev.Hostname,
		Consequences: []string{
			"Its certificate is refused from now on: the agent can no longer report or fetch its policy.",
			"It leaves the fleet's counts; its history is kept.",
			"It cannot be undone: to bring the machine back, enrol it again with a new token.",
		},
		Back: "/devices/" + url.PathEscape(dev.ID),
	})
}

func (h *handler) deviceRevoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	dev, err := h.st.Device(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "Device")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if r.PostFormValue("confirm") != dev.Hostname {
		h.deviceRevokeConfirm(w, r, http.StatusUnprocessableEntity, "Type the device's hostname to confirm.")
		return
	}
	if err := h.st.RevokeDeviceAudited(r.Context(), id, false, h.entry(r, "device.revoke", id, "hostname "+dev.Hostname+", group "+dev.Group)); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.cache.clear()
	h.recordRevoke(r.Context(), id, session(r).User, false)
	http.Redirect(w, r, "/devices/"+url.PathEscape(id)+"?revoked=1", http.StatusSeeOther)
}

// Token rollouts.

type versionCount struct {
	Version string
	Devices int
}

type rolloutData struct {
	Rollout  store.Rollout
	State    string
	Rows     []deviceRow
	By       map[string]string
	At       map[string]time.Time
	Never    int
	Versions []versionCount
}

func (h *handler) tokenRollout(w http.ResponseWriter, r *http.Request) {
	ro, err := h.st.TokenRollout(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		h.notFound(w, r, "Token")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	now := h.now()
	d := rolloutData{Rollout: ro, State: ro.Token.State(now), Never: ro.NeverReported(), By: map[string]string{}, At: map[string]time.Time{}}
	for _, dev := range ro.Devices {
		d.Rows = append(d.Rows, newDeviceRow(dev.Device, now, h.cfg.StaleAfter))
		d.By[dev.ID], d.At[dev.ID] = strings.TrimPrefix(dev.By, "device."), dev.At
	}
	for v, n := range ro.AgentVersions() {
		d.Versions = append(d.Versions, versionCount{v, n})
	}
	slices.SortFunc(d.Versions, func(a, b versionCount) int { return strings.Compare(a.Version, b.Version) })
	h.render(w, r, "rollout", page{Title: "Token " + ro.Token.ID, Nav: "tokens", Data: d})
}

// Audit log, filtered.

type auditData struct {
	Entries []store.AuditEntry
	Query   url.Values
	// Next is the id the next page starts below, 0 on the last page.
	Next int64
}

const auditPageSize = 200

func (h *handler) auditPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Limit: auditPageSize + 1}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			h.render(w, r, "audit", page{Title: "Audit log", Nav: "audit", Error: "Since is a date (2006-01-02).", Data: auditData{Query: q}})
			return
		}
		f.Since = t
	}
	if b, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && b > 0 {
		f.Before = b
	}
	es, err := h.st.AuditQuery(r.Context(), f)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	d := auditData{Entries: es, Query: q}
	if len(es) > auditPageSize {
		d.Entries = es[:auditPageSize]
		d.Next = d.Entries[auditPageSize-1].ID
	}
	h.render(w, r, "audit", page{Title: "Audit log", Nav: "audit", Data: d})
}

// waiverHosts returns the hostnames of the waivers' devices.
func (h *handler) waiverHosts(r *http.Request, ws []store.Waiver) (map[string]string, error) {
	var ids []string
	for _, w := range ws {
		if w.DeviceID != "" {
			ids = append(ids, w.DeviceID)
		}
	}
	return h.st.Hostnames(r.Context(), ids)
}

// ErrAmbiguousHost: more than one device has the hostname given.
var ErrAmbiguousHost = errors.New("more than one device has this hostname")

// ResolveDevice finds the device s names: its id, or else its hostname
// (exactly, ignoring case) when one non-revoked device has it, so a
// waiver can be granted by the name a person knows the laptop by.
// ErrNotFound for neither; ErrAmbiguousHost, with the ids, for several.
func ResolveDevice(ctx context.Context, st store.Dashboard, s string, now time.Time) (store.Device, error) {
	d, err := st.Device(ctx, s)
	if !errors.Is(err, store.ErrNotFound) {
		return d, err
	}
	p, err := st.ListDevices(ctx, store.DeviceQuery{Now: now, StaleAfter: time.Hour, Search: s, Limit: 100})
	if err != nil {
		return store.Device{}, err
	}
	var found []store.Device
	for _, d := range p.Devices {
		if strings.EqualFold(d.Hostname, s) && !d.Revoked() {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return store.Device{}, fmt.Errorf("device %s: %w", s, store.ErrNotFound)
	case 1:
		return found[0], nil
	}
	var ids []string
	for _, d := range found {
		ids = append(ids, d.ID)
	}
	return store.Device{}, fmt.Errorf("%w: %s is %s; give the device id", ErrAmbiguousHost, s, strings.Join(ids, ", "))
}
