package dashboard

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wardhq/ward/collector/evidence"
	"github.com/wardhq/ward/collector/store"
)

//go:embed web
var webFS embed.FS

// Config configures the dashboard. Zero fields take the defaults.
type Config struct {
	// Store is the collector's store; it must implement store.Dashboard.
	Store store.Store
	// StaleAfter: a device not seen for longer is stale (default 3h, as
	// the collector's 3 × its 1h default interval).
	StaleAfter time.Duration
	// InsecureCookies drops the Secure attribute (and the __Host- prefix)
	// from cookies. Only for a dashboard served over plain HTTP on a
	// loopback address, where no one can listen in.
	InsecureCookies bool
	// SessionTTL is how long a sign-in lasts (default 12h).
	SessionTTL time.Duration
	// MaxFailedLogins is the number of sign-in attempts a (user, client
	// address) pair has before it must wait, 1 minute doubling up to 15
	// (default 5); see throttle.
	MaxFailedLogins int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (for the sign-in throttle and the audit log); by default
	// the TCP peer is the client.
	TrustedProxies []netip.Prefix
	// CacheFor is how long the overview's costlier parts (failing per
	// rule, past deadline) are reused; the trend is reused for 10 times
	// as long. Default 30s; negative: never reuse.
	CacheFor time.Duration
	// TOTPKey (TOTPKeySize random bytes) seals local accounts' TOTP
	// secrets at rest; without it no one can turn a second factor on, and
	// a user who has one cannot sign in (docs/signin.md).
	TOTPKey []byte
	// OIDC, when set, offers sign-in through an OpenID Connect provider
	// beside local accounts (docs/signin.md).
	OIDC *OIDC
	// Collector names this collector in exports (default: this host,
	// version unknown).
	Collector ExportCollector
	// EvidenceCA returns the collector CA chain (DER) evidence exports
	// carry (collector/evidence.CAChain); without it the dashboard offers
	// no evidence export.
	EvidenceCA func() [][]byte
	// EvidenceLog returns the collector's evidence log (nil: none), whose
	// inclusion proofs evidence exports then carry.
	EvidenceLog func() *evidence.Log
	// Logger (default slog.Default()) and clock (default time.Now).
	Logger *slog.Logger
	Now    func() time.Time
}

type handler struct {
	cfg      Config
	st       store.Dashboard
	log      *slog.Logger
	pages    map[string]*template.Template
	throttle signIns
	mux      *http.ServeMux
	cache    cache
	parsed   parsedPolicies
	signin   store.SignIn // nil: the store has no second factors
	sealer   *sealer      // nil: no TOTP key
	oidc     *oidcClient  // nil: no OpenID Connect
}

// cache keeps a few computed values for a while.
type cache struct {
	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	v     any
	until time.Time
}

// clear forgets every value.
func (c *cache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// get returns the value under key, computing it with fn when missing or
// older than ttl.
func (c *cache) get(key string, now time.Time, ttl time.Duration, fn func() (any, error)) (any, error) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.v, nil
	}
	v, err := fn()
	if err != nil || ttl <= 0 {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]cached{}
	}
	c.m[key] = cached{v, now.Add(ttl)}
	c.mu.Unlock()
	return v, nil
}

func (h *handler) now() time.Time { return h.cfg.Now().UTC() }

// New returns the dashboard's handler, to be served at the root of the
// collector's HTTP port.
func New(cfg Config) (http.Handler, error) {
	st, ok := cfg.Store.(store.Dashboard)
	if !ok {
		return nil, fmt.Errorf("dashboard: store %T does not support the dashboard", cfg.Store)
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 3 * time.Hour
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.MaxFailedLogins <= 0 {
		cfg.MaxFailedLogins = 5
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CacheFor == 0 {
		cfg.CacheFor = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Collector.Host == "" {
		cfg.Collector = ThisCollector(cfg.Collector.Version)
	}
	h := &handler{cfg: cfg, st: st, log: cfg.Logger, throttle: localSignIns{newThrottle(cfg.MaxFailedLogins, throttleEntries)}, pages: map[string]*template.Template{}}
	if ss, ok := st.(store.SharedState); ok {
		// Several collectors may share the store: so does the throttle.
		h.throttle = sharedSignIns{st: ss, maxFree: cfg.MaxFailedLogins}
	}
	if err := h.initSignIn(); err != nil {
		return nil, err
	}
	if err := h.parse(); err != nil {
		return nil, err
	}
	static, _ := fs.Sub(webFS, "web/static")
	m := http.NewServeMux()
	m.HandleFunc("GET /static/{file...}", func(w http.ResponseWriter, r *http.Request) {
		// Files only: a directory (or a path that is not one) is not found,
		// never listed.
		name := r.PathValue("file")
		if fi, err := fs.Stat(static, name); !fs.ValidPath(name) || err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		http.ServeFileFS(w, r, static, name)
	})
	m.HandleFunc("GET /login", h.loginForm)
	m.HandleFunc("POST /login", h.login)
	m.Handle("POST /logout", h.auth(http.HandlerFunc(h.logout)))
	h.signinRoutes(m)
	m.Handle("GET /{$}", h.auth(http.HandlerFunc(h.overview)))
	m.Handle("GET /devices", h.auth(http.HandlerFunc(h.devices)))
	m.Handle("GET /devices/{id}", h.auth(http.HandlerFunc(h.device)))
	m.Handle("POST /devices/{id}/retire", h.admin(h.deviceRetire))
	m.Handle("GET /policies", h.auth(http.HandlerFunc(h.policiesPage)))
	m.Handle("POST /policies", h.admin(h.policyUpload))
	m.Handle("GET /feed", h.auth(http.HandlerFunc(h.feedPage)))
	m.Handle("GET /waivers", h.auth(http.HandlerFunc(h.waivers)))
	m.Handle("POST /waivers", h.admin(h.waiverCreate))
	m.Handle("POST /waivers/{id}/revoke", h.admin(h.waiverRevoke))
	m.Handle("GET /export", h.auth(http.HandlerFunc(h.export)))
	m.Handle("GET /export/evidence", h.auth(http.HandlerFunc(h.fleetEvidence)))
	m.Handle("GET /devices/{id}/evidence", h.auth(http.HandlerFunc(h.deviceEvidence)))
	m.Handle("GET /tokens", h.admin(h.tokens))
	m.Handle("POST /tokens", h.admin(h.tokenCreate))
	m.Handle("POST /tokens/{id}/revoke", h.admin(h.tokenRevoke))
	m.Handle("GET /audit", h.admin(h.auditPage))
	m.Handle("GET /webhooks", h.admin(h.webhooks))
	// Administration (admin.go).
	m.Handle("GET /users", h.admin(h.users))
	m.Handle("POST /users", h.admin(h.userAdd))
	m.Handle("POST /users/{name}/role", h.admin(h.userRole))
	m.Handle("POST /users/{name}/password", h.admin(h.userPassword))
	m.Handle("POST /users/{name}/sessions/end", h.admin(h.userEndSessions))
	m.Handle("GET /users/{name}/remove", h.admin(h.userRemoveForm))
	m.Handle("POST /users/{name}/remove", h.admin(h.userRemove))
	m.Handle("GET /devices/{id}/revoke", h.admin(h.deviceRevokeForm))
	m.Handle("POST /devices/{id}/revoke", h.admin(h.deviceRevoke))
	m.Handle("GET /tokens/{id}", h.admin(h.tokenRollout))
	h.mux = m
	return h, nil
}

// ServeHTTP adds the security headers every response carries.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 2<<20)
	}
	h.mux.ServeHTTP(w, r)
}

var funcs = template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil {
				return "—"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return "—"
	},
	"lower": strings.ToLower,
	"query": func(base url.Values, kv ...any) string {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			k := fmt.Sprint(kv[i])
			v := fmt.Sprint(kv[i+1])
			if v == "" {
				q.Del(k)
			} else {
				q.Set(k, v)
			}
		}
		return "?" + q.Encode()
	},
	"sel": func(a, b any) bool { return fmt.Sprint(a) == fmt.Sprint(b) },
	"neg": func(n int) int { return -n },
}

func (h *handler) parse() error {
	names, err := fs.Glob(webFS, "web/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "web/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(webFS, "web/layout.html", n)
		if err != nil {
			return fmt.Errorf("dashboard: template %s: %w", n, err)
		}
		h.pages[base] = t
	}
	return nil
}

// page is what every template gets.
type page struct {
	Title   string
	User    string
	Admin   bool
	CSRF    string
	Error   string
	Notice  string
	Form    map[string]string
	Nav     string
	Data    any
	Version string
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, name string, p page) {
	if se := session(r); se.User != "" {
		p.User, p.Admin, p.CSRF = se.User, se.Role == store.RoleAdmin, se.CSRF
	}
	t, ok := h.pages[name]
	if !ok {
		h.serverError(w, r, fmt.Errorf("no template %q", name))
		return
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		h.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func (h *handler) serverError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Error("dashboard", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

func (h *handler) notFound(w http.ResponseWriter, r *http.Request, what string) {
	w.WriteHeader(http.StatusNotFound)
	h.render(w, r, "error", page{Title: "Not found", Error: what + " not found."})
}

func atoi(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// parseWhen reads a date (2006-01-02, the end of that UTC day) or an
// RFC 3339 time.
func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.AddDate(0, 0, 1).Add(-time.Nanosecond), nil
	}
	return time.Time{}, errors.New("want a date (2006-01-02) or an RFC 3339 time")
}
