package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/wardhq/ward/collector/store"
)

// BcryptCost is the cost of stored password hashes.
const BcryptCost = 12

// MinPasswordLen is the shortest password HashPassword accepts.
const MinPasswordLen = 12

// HashPassword checks the password's length and returns its bcrypt hash.
func HashPassword(password string) ([]byte, error) {
	if len(password) < MinPasswordLen {
		return nil, fmt.Errorf("password must be at least %d characters", MinPasswordLen)
	}
	if len(password) > 72 {
		return nil, errors.New("password must be at most 72 bytes (bcrypt's limit)")
	}
	return bcrypt.GenerateFromPassword([]byte(password), BcryptCost)
}

// GeneratePassword returns a random 24-character password.
func GeneratePassword() string {
	return randomToken(18)
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// Cookie names. The __Host- prefix makes the browser insist on Secure,
// Path=/ and no Domain; it is dropped only with InsecureCookies.
const (
	sessionCookie      = "__Host-ward_session"
	loginCookie        = "__Host-ward_login"
	insecureSession    = "ward_session"
	insecureLoginToken = "ward_login"
)

func (h *handler) cookieName(secure string) string {
	if h.cfg.InsecureCookies {
		switch secure {
		case sessionCookie:
			return insecureSession
		case loginCookie:
			return insecureLoginToken
		case pendingCookie:
			return insecurePending
		case oidcCookie:
			return insecureOIDC
		}
	}
	return secure
}

func (h *handler) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	h.setCookieSite(w, name, value, maxAge, http.SameSiteStrictMode)
}

// setCookieSite is setCookie with another SameSite mode: Lax only for the
// OpenID Connect flow's cookie, which must come back with the identity
// provider's redirect (a cross-site navigation).
func (h *handler) setCookieSite(w http.ResponseWriter, name, value string, maxAge int, site http.SameSite) {
	http.SetCookie(w, &http.Cookie{
		Name: h.cookieName(name), Value: value, Path: "/", MaxAge: maxAge,
		Secure: !h.cfg.InsecureCookies, HttpOnly: true, SameSite: site,
	})
}

type ctxKey struct{}

// session returns the signed-in session of the request (set by auth).
func session(r *http.Request) store.Session {
	s, _ := r.Context().Value(ctxKey{}).(store.Session)
	return s
}

// auth loads the session; without one it sends the browser to sign in.
// Every POST must carry the session's CSRF token.
func (h *handler) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(h.cookieName(sessionCookie))
		var se store.Session
		if err == nil {
			se, err = h.st.Session(r.Context(), hashID(c.Value), h.now())
		}
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, http.ErrNoCookie) {
				h.serverError(w, r, err)
				return
			}
			if r.Method != http.MethodGet {
				http.Error(w, "sign in first", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !h.csrfOK(r, se.CSRF) {
			http.Error(w, "invalid or missing CSRF token: reload the page and try again", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, se)))
	})
}

func (h *handler) csrfOK(r *http.Request, want string) bool {
	got := r.PostFormValue("csrf")
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// admin lets admins through and refuses everyone else.
func (h *handler) admin(next http.HandlerFunc) http.Handler {
	return h.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if session(r).Role != store.RoleAdmin {
			w.WriteHeader(http.StatusForbidden)
			h.render(w, r, "error", page{Title: "Not allowed", Error: "This needs the admin role."})
			return
		}
		next(w, r)
	}))
}

// dummyHash is compared against when the user does not exist, so a wrong
// name takes as long as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("ward-no-such-user"), BcryptCost)

// loginData is the sign-in page's: the identity provider's button when
// OpenID Connect is configured.
type loginData struct {
	OIDC string // the button's label
}

func (h *handler) loginPage(p page) page {
	p.Title = "Sign in"
	if h.oidc != nil {
		p.Data = loginData{OIDC: h.oidc.label}
	}
	return p
}

func (h *handler) loginForm(w http.ResponseWriter, r *http.Request) {
	tok := randomToken(24)
	h.setCookie(w, loginCookie, tok, 3600)
	h.render(w, r, "login", h.loginPage(page{CSRF: tok}))
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(h.cookieName(loginCookie))
	if err != nil || !h.csrfOK(r, c.Value) {
		http.Error(w, "invalid or missing CSRF token: reload the sign-in page", http.StatusForbidden)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("user"))
	// No user name is longer (user add refuses it): a longer one is
	// wrong, and only its first bytes are kept, logged or shown.
	tooLong := len(name) > MaxUserName
	if tooLong {
		name = truncateUTF8(name, MaxUserName)
	}
	password := r.PostFormValue("password")
	now := h.now()
	addr := h.clientAddr(r)
	log := h.log.With("user", name, "addr", addr)
	if tooLong {
		log = log.With("user_truncated", true)
	}
	again := func(status int, msg string) {
		w.WriteHeader(status)
		h.render(w, r, "login", h.loginPage(page{CSRF: c.Value, Error: msg, Form: map[string]string{"user": name}}))
	}
	wait, err := h.throttle.admit(r.Context(), now, name, addr)
	if err != nil {
		h.serverError(w, r, err) // unknown is not admitted
		return
	}
	if wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		log.Warn("sign-in throttled", "retry_after_s", secs)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		again(http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins. Wait %s and try again.", waitText(secs)))
		return
	}
	hash, u := dummyHash, store.User{}
	if !tooLong {
		u, err = h.st.User(r.Context(), name)
		if err == nil && len(u.Hash) == 0 {
			// An OpenID Connect user has no password: refused as slowly
			// as a wrong one.
			err = store.ErrNotFound
		} else if err == nil {
			hash = u.Hash
		} else if !errors.Is(err, store.ErrNotFound) {
			h.serverError(w, r, err)
			return
		}
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || err != nil || tooLong {
		log.Warn("sign-in failed")
		again(http.StatusUnauthorized, "Wrong user name or password.")
		return
	}
	if err := h.throttle.succeed(r.Context(), now, name, addr); err != nil {
		h.serverError(w, r, err)
		return
	}
	secret, err := h.totpFor(r, u.Name)
	if err != nil {
		// A second factor that cannot be checked lets no one in.
		log.Error("second factor cannot be checked", "err", err)
		again(http.StatusServiceUnavailable, secondFactorBroken)
		return
	}
	if secret != "" {
		h.startSecondFactor(w, r, u.Name)
		return
	}
	h.setCookie(w, loginCookie, "", -1)
	if err := h.startSession(w, r, u.Name, "from "+addr); err != nil {
		h.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// startSession signs the browser in as user, whichever way it proved who
// it is (password, password and code, identity provider): the same
// cookie, CSRF token and expiry, and an audit entry saying how.
func (h *handler) startSession(w http.ResponseWriter, r *http.Request, user, how string) error {
	now := h.now()
	id := randomToken(32)
	se := store.Session{IDHash: hashID(id), User: user, CSRF: randomToken(24), CreatedAt: now, ExpiresAt: now.Add(h.cfg.SessionTTL)}
	if err := h.st.CreateSession(r.Context(), se); err != nil {
		return err
	}
	h.setCookie(w, sessionCookie, id, int(h.cfg.SessionTTL.Seconds()))
	h.audit(r.Context(), user, "sign-in", user, how)
	return nil
}

// waitText says secs in words for the sign-in page.
func waitText(secs int) string {
	if secs <= 90 {
		return fmt.Sprintf("%d seconds", secs)
	}
	return fmt.Sprintf("%d minutes", (secs+59)/60)
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(h.cookieName(sessionCookie)); err == nil {
		if err := h.st.DeleteSession(r.Context(), hashID(c.Value)); err != nil {
			h.serverError(w, r, err)
			return
		}
	}
	h.setCookie(w, sessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// audit records an admin action, and forgets cached overview parts so the
// action shows at once.
func (h *handler) audit(ctx context.Context, actor, action, target, detail string) {
	h.cache.clear()
	if err := h.st.AddAudit(ctx, store.AuditEntry{At: h.now(), Actor: actor, Action: action, Target: target, Detail: detail}); err != nil {
		h.log.Error("audit log", "action", action, "err", err)
	}
}
