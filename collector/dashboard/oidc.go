package dashboard

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wardhq/ward/collector/store"
)

// OIDCCallbackPath is where the identity provider sends the browser back:
// the path of OIDC.RedirectURL.
const OIDCCallbackPath = "/login/oidc/callback"

// OIDC configures sign-in through an OpenID Connect provider beside local
// accounts (docs/signin.md): the authorization code flow with state,
// nonce and PKCE (S256).
type OIDC struct {
	// Issuer is the provider's issuer URL; its discovery document is
	// fetched on the first sign-in (and again after a failure), so a
	// provider that is down does not keep the collector from starting.
	Issuer       string
	ClientID     string
	ClientSecret string // may be empty for a public client (PKCE)
	// RedirectURL is this dashboard's callback as the provider knows it,
	// e.g. https://ward.example.com/login/oidc/callback.
	RedirectURL string
	// Scopes asked for (default openid, email, profile).
	Scopes []string
	// AllowedDomains are the e-mail domains let in; empty: any.
	AllowedDomains []string
	// RoleClaim is the claim roles are read from (default "groups"); a
	// dotted path descends into objects (realm_access.roles). Its value is
	// a string or a list of strings.
	RoleClaim string
	// AdminValues and ViewerValues are the claim values that map to each
	// role (default ward-admins, ward-viewers); admin wins. A user with
	// neither is refused.
	AdminValues  []string
	ViewerValues []string
	// Label is the sign-in page's button (default "Sign in with single
	// sign-on").
	Label string
	// HTTPClient talks to the provider (default http.DefaultClient with a
	// 15 s timeout).
	HTTPClient *http.Client
}

// Cookie of a sign-in gone to the identity provider and not back yet.
const (
	oidcCookie   = "__Host-ward_oidc"
	insecureOIDC = "ward_oidc"
	// oidcFor is how long the provider has to send the browser back.
	oidcFor = 10 * time.Minute
)

type oidcClient struct {
	cfg   OIDC
	label string
	mu    sync.Mutex
	prov  *oidc.Provider
}

func newOIDC(c OIDC) (*oidcClient, error) {
	if c.Issuer == "" || c.ClientID == "" || c.RedirectURL == "" {
		return nil, errors.New("dashboard: OpenID Connect needs an issuer, a client id and a redirect URL")
	}
	if _, err := url.Parse(c.Issuer); err != nil {
		return nil, fmt.Errorf("dashboard: OpenID Connect issuer: %w", err)
	}
	u, err := url.Parse(c.RedirectURL)
	if err != nil || u.Path != OIDCCallbackPath || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("dashboard: OpenID Connect redirect URL %q: want http(s)://<this dashboard>%s", c.RedirectURL, OIDCCallbackPath)
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	if !slices.Contains(c.Scopes, oidc.ScopeOpenID) {
		c.Scopes = append([]string{oidc.ScopeOpenID}, c.Scopes...)
	}
	if c.RoleClaim == "" {
		c.RoleClaim = "groups"
	}
	if len(c.AdminValues) == 0 {
		c.AdminValues = []string{"ward-admins"}
	}
	if len(c.ViewerValues) == 0 {
		c.ViewerValues = []string{"ward-viewers"}
	}
	for i, d := range c.AllowedDomains {
		c.AllowedDomains[i] = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(d), "@"))
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	label := c.Label
	if label == "" {
		label = "Sign in with single sign-on"
	}
	return &oidcClient{cfg: c, label: label}, nil
}

func (o *oidcClient) context(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, o.cfg.HTTPClient)
}

// provider returns the discovered provider, discovering it when not yet.
func (o *oidcClient) provider(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.prov != nil {
		return o.prov, nil
	}
	p, err := oidc.NewProvider(o.context(ctx), o.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	o.prov = p
	return p, nil
}

func (o *oidcClient) oauth2(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(), RedirectURL: o.cfg.RedirectURL, Scopes: o.cfg.Scopes}
}

// role maps the claims to a role, or "" when they map to none.
func (o *oidcClient) role(claims map[string]any) string {
	var v any = claims
	for part := range strings.SplitSeq(o.cfg.RoleClaim, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[part]
	}
	var have []string
	switch x := v.(type) {
	case string:
		have = []string{x}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				have = append(have, s)
			}
		}
	}
	in := func(want []string) bool {
		return slices.ContainsFunc(have, func(s string) bool { return slices.Contains(want, s) })
	}
	switch {
	case in(o.cfg.AdminValues):
		return store.RoleAdmin
	case in(o.cfg.ViewerValues):
		return store.RoleViewer
	}
	return ""
}

// oidcStart sends the browser to the provider. state, nonce and the PKCE
// verifier stay in a cookie of this browser only (nothing on the server,
// so any collector on the store can take the callback).
func (h *handler) oidcStart(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	p, err := h.oidc.provider(ctx)
	if err != nil {
		h.log.Error("oidc discovery", "issuer", h.oidc.cfg.Issuer, "err", err)
		h.oidcRefuse(w, r, http.StatusBadGateway, "The identity provider cannot be reached. Try again later, or sign in with a local account.")
		return
	}
	state, nonce, verifier := randomToken(24), randomToken(24), oauth2.GenerateVerifier()
	h.setCookieSite(w, oidcCookie, state+"."+nonce+"."+verifier, int(oidcFor.Seconds()), http.SameSiteLaxMode)
	http.Redirect(w, r, h.oidc.oauth2(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusSeeOther)
}

func (h *handler) oidcRefuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.WriteHeader(status)
	h.render(w, r, "refused", page{Title: "Not signed in", Error: msg})
}

// oidcCallback takes the provider's answer: the code is exchanged (with
// the PKCE verifier) for an ID token, whose signature, issuer, audience,
// expiry and nonce are checked; then the e-mail domain and the role claim
// decide whether and as what the user is let in.
func (h *handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	addr := h.clientAddr(r)
	log := h.log.With("addr", addr, "issuer", h.oidc.cfg.Issuer)
	c, err := r.Cookie(h.cookieName(oidcCookie))
	if err != nil {
		h.oidcRefuse(w, r, http.StatusBadRequest, "This sign-in expired or was started in another browser. Start it again.")
		return
	}
	h.setCookieSite(w, oidcCookie, "", -1, http.SameSiteLaxMode) // good for one answer
	parts := strings.Split(c.Value, ".")
	q := r.URL.Query()
	if len(parts) != 3 || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(parts[0])) != 1 {
		log.Warn("oidc sign-in refused", "reason", "state does not match")
		h.oidcRefuse(w, r, http.StatusBadRequest, "This answer from the identity provider is not for this sign-in. Start it again.")
		return
	}
	if e := q.Get("error"); e != "" {
		log.Warn("oidc sign-in refused by the provider", "error", e)
		h.oidcRefuse(w, r, http.StatusForbidden, "The identity provider did not sign you in: "+truncateUTF8(strings.TrimSpace(e+" "+q.Get("error_description")), 200))
		return
	}
	nonce, verifier := parts[1], parts[2]
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	p, err := h.oidc.provider(ctx)
	if err != nil {
		log.Error("oidc discovery", "err", err)
		h.oidcRefuse(w, r, http.StatusBadGateway, "The identity provider cannot be reached. Try again later.")
		return
	}
	tok, err := h.oidc.oauth2(p).Exchange(h.oidc.context(ctx), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		log.Warn("oidc sign-in refused", "reason", "code exchange failed", "err", err)
		h.oidcRefuse(w, r, http.StatusBadGateway, "The identity provider did not accept this sign-in's code. Start it again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: h.oidc.cfg.ClientID, Now: h.now}).Verify(h.oidc.context(ctx), raw)
	if err != nil {
		log.Warn("oidc sign-in refused", "reason", "ID token not valid", "err", err)
		h.oidcRefuse(w, r, http.StatusUnauthorized, "The identity provider's token is not valid for this dashboard (signature, audience or expiry). Start again; if it goes on, tell the administrator.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		log.Warn("oidc sign-in refused", "reason", "nonce does not match", "sub", idt.Subject)
		h.oidcRefuse(w, r, http.StatusUnauthorized, "The identity provider's token is not for this sign-in. Start it again.")
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		h.serverError(w, r, err)
		return
	}
	email, _ := claims["email"].(string)
	email = strings.ToLower(strings.TrimSpace(email))
	log = log.With("sub", idt.Subject, "user", truncateUTF8(email, MaxUserName))
	if ev, ok := claims["email_verified"]; ok && ev != true && ev != "true" {
		log.Warn("oidc sign-in refused", "reason", "e-mail address not verified")
		h.oidcRefuse(w, r, http.StatusForbidden, "Your identity provider has not verified your e-mail address.")
		return
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || len(email) > MaxUserName {
		log.Warn("oidc sign-in refused", "reason", "no usable e-mail address")
		h.oidcRefuse(w, r, http.StatusForbidden, fmt.Sprintf("The identity provider sent no e-mail address Ward can use as your name (at most %d bytes; ask for the email scope).", MaxUserName))
		return
	}
	if d := h.oidc.cfg.AllowedDomains; len(d) > 0 && !slices.Contains(d, email[at+1:]) {
		log.Warn("oidc sign-in refused", "reason", "e-mail domain not allowed")
		h.oidcRefuse(w, r, http.StatusForbidden, "Accounts of "+email[at+1:]+" may not sign in to this dashboard.")
		return
	}
	role := h.oidc.role(claims)
	if role == "" {
		log.Warn("oidc sign-in refused", "reason", "no role", "claim", h.oidc.cfg.RoleClaim)
		h.oidcRefuse(w, r, http.StatusForbidden, fmt.Sprintf("You (%s) are signed in at your identity provider, but not in a group that may use Ward: ask to be added to %s (admin) or %s (viewer).",
			email, strings.Join(h.oidc.cfg.AdminValues, ", "), strings.Join(h.oidc.cfg.ViewerValues, ", ")))
		return
	}
	u, err := h.signin.LinkOIDC(r.Context(), store.OIDCLink{Issuer: idt.Issuer, Subject: idt.Subject, Name: email, Role: role, At: h.now()})
	if errors.Is(err, store.ErrExists) {
		log.Warn("oidc sign-in refused", "reason", "name taken by another account")
		h.oidcRefuse(w, r, http.StatusConflict, "Another Ward account is already named "+email+", so this sign-in cannot take that name. An admin can remove that account.")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if err := h.startSession(w, r, u.Name, fmt.Sprintf("OpenID Connect (%s) as %s from %s", idt.Issuer, role, addr)); err != nil {
		h.serverError(w, r, err)
		return
	}
	// The session cookie is SameSite=Strict, and this response ends a
	// navigation that began at the provider: a redirect now would still
	// be cross-site and go without the cookie. A refresh from this page
	// is a navigation of this site.
	w.Header().Set("Refresh", "0; url=/")
	h.render(w, r, "signedin", page{Title: "Signed in"})
}
