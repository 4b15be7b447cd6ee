package dashboard

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"

	"github.com/wardhq/ward/collector/store"
)

// The second factor for local accounts is TOTP (RFC 6238: 6 digits, 30 s
// steps, SHA-1, what every authenticator app does), one step of clock
// skew either way. A code is good once: the store keeps the last step a
// code was accepted for and refuses it or an earlier one (docs/signin.md).
const (
	totpPeriod = 30
	totpSkew   = 1
	// pendingFor is how long a sign-in whose password was right waits
	// for its code.
	pendingFor = 5 * time.Minute
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// TOTPKeySize is the size of the key TOTP secrets are sealed with.
const TOTPKeySize = 32

// totpMagic starts a sealed TOTP secret: format version 1.
const totpMagic = "ward-totp-1\x00"

// sealer encrypts TOTP secrets at rest with AES-256-GCM under a key
// derived (HKDF-SHA256) from the collector's TOTP key file, so a dump of
// the database alone does not give the secrets away. Each secret is bound
// to its user's name: a sealed value copied onto another user's row does
// not open.
type sealer struct {
	aead cipher.AEAD
	id   [8]byte // tells a wrong key from a damaged value
}

// ErrWrongTOTPKey: a TOTP secret in the store was sealed with another key
// than this collector's (collectors on one store need the same key file).
var ErrWrongTOTPKey = errors.New("the TOTP secret was sealed with another TOTP key file than this collector's")

func newSealer(key []byte) (*sealer, error) {
	if len(key) != TOTPKeySize {
		return nil, fmt.Errorf("TOTP key: want %d bytes, have %d", TOTPKeySize, len(key))
	}
	if bytes.Count(key, key[:1]) == len(key) {
		return nil, errors.New("TOTP key: all its bytes are the same: not a random key")
	}
	k, err := hkdf.Key(sha256.New, key, nil, "ward dashboard TOTP sealing key v1", 32)
	if err != nil {
		return nil, err
	}
	id, err := hkdf.Key(sha256.New, key, nil, "ward dashboard TOTP key id v1", 8)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s := &sealer{aead: aead}
	copy(s.id[:], id)
	return s, nil
}

func (s *sealer) seal(user, secret string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	out := append([]byte(totpMagic), s.id[:]...)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, []byte(secret), []byte("ward totp "+user))
}

func (s *sealer) open(user string, sealed []byte) (string, error) {
	rest, ok := bytes.CutPrefix(sealed, []byte(totpMagic))
	n := len(s.id) + s.aead.NonceSize()
	if !ok || len(rest) < n+s.aead.Overhead() {
		return "", fmt.Errorf("TOTP secret of %s is not a sealed secret of this Ward version", user)
	}
	if subtle.ConstantTimeCompare(rest[:len(s.id)], s.id[:]) != 1 {
		return "", ErrWrongTOTPKey
	}
	nonce := rest[len(s.id):n]
	plain, err := s.aead.Open(nil, nonce, rest[n:], []byte("ward totp "+user))
	if err != nil {
		return "", fmt.Errorf("TOTP secret of %s does not open (damaged, or moved from another user)", user)
	}
	return string(plain), nil
}

// totpStep finds the time step within the skew whose code is code, and
// reports whether there is one. The code must be 6 digits; spaces are
// ignored (apps show "123 456").
func totpStep(secret, code string, now time.Time) (int64, bool) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return 0, false
	}
	cur := now.Unix() / totpPeriod
	for step := cur - totpSkew; step <= cur+totpSkew; step++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// Cookie of a sign-in waiting for its code.
const (
	pendingCookie   = "__Host-ward_2fa"
	insecurePending = "ward_2fa"
)

// secondFactorBroken is what a user whose code this collector cannot
// check is told.
const secondFactorBroken = "Your second factor cannot be checked on this collector: its TOTP key is missing or is not the one your secret was sealed with. Tell the administrator (docs/signin.md)."

// totpFor returns the user's confirmed TOTP secret in the clear, or ""
// when the user has none. A secret that cannot be opened is an error: the
// sign-in is refused rather than let through on the password alone.
func (h *handler) totpFor(r *http.Request, user string) (string, error) {
	if h.signin == nil {
		return "", nil
	}
	t, err := h.signin.TOTP(r.Context(), user)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.ConfirmedAt == nil) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if h.sealer == nil {
		return "", errors.New("the user has a TOTP second factor but this collector has no TOTP key (--totp-key-file)")
	}
	return h.sealer.open(user, t.Secret)
}

// startSecondFactor parks a sign-in whose password was right until its
// code comes.
func (h *handler) startSecondFactor(w http.ResponseWriter, r *http.Request, user string) {
	now := h.now()
	id := randomToken(32)
	p := store.PendingSignIn{IDHash: hashID(id), User: user, CSRF: randomToken(24), CreatedAt: now, ExpiresAt: now.Add(pendingFor)}
	if err := h.signin.CreatePendingSignIn(r.Context(), p); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.setCookie(w, loginCookie, "", -1)
	h.setCookie(w, pendingCookie, id, int(pendingFor.Seconds()))
	http.Redirect(w, r, "/login/totp", http.StatusSeeOther)
}

// pending returns the request's sign-in waiting for its code, or
// ErrNotFound.
func (h *handler) pending(r *http.Request) (store.PendingSignIn, error) {
	if h.signin == nil {
		return store.PendingSignIn{}, store.ErrNotFound
	}
	c, err := r.Cookie(h.cookieName(pendingCookie))
	if err != nil {
		return store.PendingSignIn{}, store.ErrNotFound
	}
	return h.signin.PendingSignIn(r.Context(), hashID(c.Value), h.now())
}

func (h *handler) totpForm(w http.ResponseWriter, r *http.Request) {
	p, err := h.pending(r)
	if errors.Is(err, store.ErrNotFound) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.render(w, r, "totp", page{Title: "Second factor", CSRF: p.CSRF, Form: map[string]string{"user": p.User}})
}

func (h *handler) totpLogin(w http.ResponseWriter, r *http.Request) {
	p, err := h.pending(r)
	if errors.Is(err, store.ErrNotFound) {
		w.WriteHeader(http.StatusUnauthorized)
		h.render(w, r, "error", page{Title: "Sign in again", Error: "This sign-in has expired (it waits 5 minutes for the code). Sign in again."})
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if !h.csrfOK(r, p.CSRF) {
		http.Error(w, "invalid or missing CSRF token: reload the page", http.StatusForbidden)
		return
	}
	now := h.now()
	addr := h.clientAddr(r)
	log := h.log.With("user", p.User, "addr", addr)
	again := func(status int, msg string) {
		w.WriteHeader(status)
		h.render(w, r, "totp", page{Title: "Second factor", CSRF: p.CSRF, Error: msg, Form: map[string]string{"user": p.User}})
	}
	// Codes are throttled like passwords, under a key of their own, so a
	// right password does not give the code's guesses back.
	key := "totp:" + p.User
	wait, err := h.throttle.admit(r.Context(), now, key, addr)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		log.Warn("second factor throttled", "retry_after_s", secs)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		again(http.StatusTooManyRequests, fmt.Sprintf("Too many wrong codes. Wait %s and try again.", waitText(secs)))
		return
	}
	secret, err := h.totpFor(r, p.User)
	if err != nil {
		log.Error("second factor cannot be checked", "err", err)
		again(http.StatusServiceUnavailable, secondFactorBroken)
		return
	}
	if secret == "" {
		// Reset since the password was checked: start over.
		h.signin.DeletePendingSignIn(r.Context(), p.IDHash)
		h.setCookie(w, pendingCookie, "", -1)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	step, ok := totpStep(secret, r.PostFormValue("code"), now)
	if !ok {
		log.Warn("second factor failed")
		again(http.StatusUnauthorized, "Wrong code. Type the 6 digits your authenticator app shows now.")
		return
	}
	fresh, err := h.signin.UseTOTPStep(r.Context(), p.User, step)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if !fresh {
		log.Warn("second factor replayed", "step", step)
		again(http.StatusUnauthorized, "That code was used already. Wait for the next one and type it.")
		return
	}
	if err := h.throttle.succeed(r.Context(), now, key, addr); err != nil {
		h.serverError(w, r, err)
		return
	}
	if err := h.signin.DeletePendingSignIn(r.Context(), p.IDHash); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.setCookie(w, pendingCookie, "", -1)
	if err := h.startSession(w, r, p.User, "password and TOTP from "+addr); err != nil {
		h.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// accountData is the account page's.
type accountData struct {
	Role       string
	OIDC       bool // signs in through the identity provider
	NoKey      bool // this collector cannot seal secrets
	Enabled    *time.Time
	PendingURI string // otpauth:// URI of a secret waiting for its first code
	Secret     string // the same secret in base32, to type in
}

func (h *handler) account(w http.ResponseWriter, r *http.Request) {
	h.renderAccount(w, r, http.StatusOK, "", "")
}

func (h *handler) renderAccount(w http.ResponseWriter, r *http.Request, status int, errMsg, notice string) {
	se := session(r)
	d := accountData{Role: se.Role, NoKey: h.sealer == nil}
	u, err := h.st.User(r.Context(), se.User)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	d.OIDC = len(u.Hash) == 0
	if h.signin != nil && !d.OIDC {
		t, err := h.signin.TOTP(r.Context(), se.User)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			h.serverError(w, r, err)
			return
		case t.ConfirmedAt != nil:
			d.Enabled = t.ConfirmedAt
		case h.sealer != nil:
			secret, err := h.sealer.open(se.User, t.Secret)
			if err != nil {
				h.serverError(w, r, err)
				return
			}
			d.Secret = secret
			d.PendingURI = totpURI(se.User, secret)
		}
	}
	w.WriteHeader(status)
	h.render(w, r, "account", page{Title: "Your account", Nav: "account", Error: errMsg, Notice: notice, Data: d})
}

// totpURI is the otpauth:// URI authenticator apps take (the Key URI
// Format pquerna/otp writes too).
func totpURI(user, secret string) string {
	v := url.Values{"secret": {secret}, "issuer": {"Ward"}, "period": {"30"}, "digits": {"6"}, "algorithm": {"SHA1"}}
	return (&url.URL{Scheme: "otpauth", Host: "totp", Path: "/Ward:" + user, RawQuery: v.Encode()}).String()
}

// totpEnrol starts an enrolment: a new secret, shown until a first code
// confirms it. The password is asked again, so a session left open is not
// enough to tie the account to someone else's phone.
func (h *handler) totpEnrol(w http.ResponseWriter, r *http.Request) {
	se := session(r)
	if h.signin == nil || h.sealer == nil {
		h.renderAccount(w, r, http.StatusConflict, "This collector has no TOTP key, so it cannot keep second factors (see docs/signin.md).", "")
		return
	}
	u, err := h.st.User(r.Context(), se.User)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if len(u.Hash) == 0 {
		h.renderAccount(w, r, http.StatusConflict, "You sign in through your identity provider: its second factor applies.", "")
		return
	}
	now, addr := h.now(), h.clientAddr(r)
	wait, err := h.throttle.admit(r.Context(), now, u.Name, addr)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if wait > 0 {
		h.renderAccount(w, r, http.StatusTooManyRequests, "Too many wrong passwords. Wait and try again.", "")
		return
	}
	if bcrypt.CompareHashAndPassword(u.Hash, []byte(r.PostFormValue("password"))) != nil {
		h.log.Warn("totp enrolment: wrong password", "user", u.Name, "addr", addr)
		h.renderAccount(w, r, http.StatusUnauthorized, "Wrong password.", "")
		return
	}
	if err := h.throttle.succeed(r.Context(), now, u.Name, addr); err != nil {
		h.serverError(w, r, err)
		return
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "Ward", AccountName: u.Name, Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	err = h.signin.SetTOTP(r.Context(), u.Name, h.sealer.seal(u.Name, key.Secret()), now)
	if errors.Is(err, store.ErrExists) {
		h.renderAccount(w, r, http.StatusConflict, "Your second factor is already on. To move it to another phone, ask an admin to reset it.", "")
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	h.audit(r.Context(), u.Name, "totp.enrol", u.Name, "new secret, waiting for its first code")
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// totpConfirm turns the enrolled secret on with its first code.
func (h *handler) totpConfirm(w http.ResponseWriter, r *http.Request) {
	se := session(r)
	if h.signin == nil || h.sealer == nil {
		h.renderAccount(w, r, http.StatusConflict, "This collector has no TOTP key, so it cannot keep second factors (see docs/signin.md).", "")
		return
	}
	t, err := h.signin.TOTP(r.Context(), se.User)
	if errors.Is(err, store.ErrNotFound) || (err == nil && t.ConfirmedAt != nil) {
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	now, addr := h.now(), h.clientAddr(r)
	key := "totp:" + se.User
	wait, err := h.throttle.admit(r.Context(), now, key, addr)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	if wait > 0 {
		h.renderAccount(w, r, http.StatusTooManyRequests, "Too many wrong codes. Wait and try again.", "")
		return
	}
	secret, err := h.sealer.open(se.User, t.Secret)
	if err != nil {
		h.serverError(w, r, err)
		return
	}
	step, ok := totpStep(secret, r.PostFormValue("code"), now)
	if !ok {
		h.renderAccount(w, r, http.StatusUnauthorized, "Wrong code: the second factor is not on yet. Check the phone's clock and type the code it shows now.", "")
		return
	}
	if err := h.signin.ConfirmTOTP(r.Context(), se.User, step, now); err != nil {
		h.serverError(w, r, err)
		return
	}
	if err := h.throttle.succeed(r.Context(), now, key, addr); err != nil {
		h.serverError(w, r, err)
		return
	}
	h.audit(r.Context(), se.User, "totp.enable", se.User, "confirmed with a first code from "+addr)
	h.renderAccount(w, r, http.StatusOK, "", "Your second factor is on: from now on, signing in asks for a code.")
}

// initSignIn sets up the second factor and OpenID Connect from the
// configuration.
func (h *handler) initSignIn() error {
	h.signin, _ = h.st.(store.SignIn)
	if h.cfg.TOTPKey != nil {
		s, err := newSealer(h.cfg.TOTPKey)
		if err != nil {
			return fmt.Errorf("dashboard: %w", err)
		}
		h.sealer = s
	}
	if h.cfg.OIDC != nil {
		if h.signin == nil {
			return fmt.Errorf("dashboard: store %T cannot keep OpenID Connect users", h.st)
		}
		o, err := newOIDC(*h.cfg.OIDC)
		if err != nil {
			return err
		}
		h.oidc = o
	}
	return nil
}

// signinRoutes adds the second factor's and OpenID Connect's pages.
func (h *handler) signinRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /login/totp", h.totpForm)
	m.HandleFunc("POST /login/totp", h.totpLogin)
	m.Handle("GET /account", h.auth(http.HandlerFunc(h.account)))
	m.Handle("POST /account/totp", h.auth(http.HandlerFunc(h.totpEnrol)))
	m.Handle("POST /account/totp/confirm", h.auth(http.HandlerFunc(h.totpConfirm)))
	if h.oidc != nil {
		m.HandleFunc("GET /login/oidc", h.oidcStart)
		m.HandleFunc("GET "+OIDCCallbackPath, h.oidcCallback)
	}
}
