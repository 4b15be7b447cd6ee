// Package oidctest is an OpenID Connect provider for tests: a real HTTP
// server with discovery, an authorization endpoint that signs its user in
// at once, a token endpoint that checks the client secret and the PKCE
// verifier, and a JWKS; its ID tokens (RS256) can be spoilt one way at a
// time to test that the relying party refuses them.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Provider is an OpenID Connect provider in the test: discovery, an
// authorization endpoint that signs the user in at once, a token endpoint
// that checks the client secret and the PKCE verifier, and its JWKS. Its
// next ID token is shaped by Next.
type Provider struct {
	t            *testing.T
	srv          *httptest.Server
	base         string // the issuer URL
	clientID     string
	clientSecret string
	key          *rsa.PrivateKey // published
	rogue        *rsa.PrivateKey // not published
	consent      bool            // answer /authorize with a page (AskConsent)
	mu           sync.Mutex
	codes        map[string]authReq
	claims       map[string]any // the signed-in user's claims besides the standard ones
	tweak        string
	authorize    url.Values
}

// URL is the issuer URL.
func (p *Provider) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.base
}

// AtLocalhost makes the provider's issuer http://localhost:PORT rather
// than 127.0.0.1: another site for a browser than a dashboard on
// 127.0.0.1, so its redirect back is a cross-site navigation. Call it
// before the relying party discovers the provider.
func (p *Provider) AtLocalhost() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.base = strings.Replace(p.srv.URL, "127.0.0.1", "localhost", 1)
}

// Close stops the provider (to test one that is down).
func (p *Provider) Close() { p.srv.Close() }

// AskConsent makes the authorization endpoint answer with a page whose
// link (#consent) goes back to the relying party, as a provider's sign-in
// page does, instead of redirecting at once: the way back is then a
// navigation started by the provider's page.
func (p *Provider) AskConsent() {
	p.mu.Lock()
	p.consent = true
	p.mu.Unlock()
}

// LastAuthorize is the last authorization request's query.
func (p *Provider) LastAuthorize() url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.authorize
}

type authReq struct{ nonce, challenge, redirect string }

// Start starts a provider for one client, stopped when the test ends.
func Start(t *testing.T, clientID, clientSecret string) *Provider {
	t.Helper()
	p := &Provider{t: t, clientID: clientID, clientSecret: clientSecret, codes: map[string]authReq{}}
	var err error
	if p.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if p.rogue, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": p.URL(), "authorization_endpoint": p.URL() + "/authorize", "token_endpoint": p.URL() + "/token",
			"jwks_uri": p.URL() + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"code"}, "code_challenge_methods_supported": []string{"S256"},
		})
	})
	m.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	m.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p.mu.Lock()
		p.authorize = q
		code := base64.RawURLEncoding.EncodeToString([]byte(q.Get("state") + "-code"))
		p.codes[code] = authReq{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		p.mu.Unlock()
		if q.Get("client_id") != p.clientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		back := q.Get("redirect_uri") + "?" + url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
		p.mu.Lock()
		consent := p.consent
		p.mu.Unlock()
		if consent {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>Example ID</title><a id="consent" href="%s">Continue to the application</a>`, html.EscapeString(back))
			return
		}
		http.Redirect(w, r, back, http.StatusFound)
	})
	m.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		p.mu.Lock()
		req, found := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		switch {
		case id != p.clientID || secret != p.clientSecret:
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		case !found || req.redirect != r.PostFormValue("redirect_uri") || base64.RawURLEncoding.EncodeToString(sum[:]) != req.challenge:
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		tok, err := p.idToken(req.nonce)
		if err != nil {
			p.t.Error(err)
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": tok})
	})
	p.srv = httptest.NewServer(m)
	p.base = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

func (p *Provider) idToken(nonce string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	c := map[string]any{"iss": p.base, "sub": fmt.Sprint("sub-", p.claims["email"]), "aud": p.clientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": nonce}
	for k, v := range p.claims {
		c[k] = v
	}
	key := p.key
	switch p.tweak {
	case "badsig":
		key = p.rogue
	case "audience":
		c["aud"] = "someone-else"
	case "expired":
		c["iat"], c["exp"] = now.Add(-time.Hour).Unix(), now.Add(-30*time.Minute).Unix()
	case "nonce":
		c["nonce"] = "not-the-nonce"
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	payload, _ := json.Marshal(c)
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Next sets the claims of the next ID token (besides iss, sub, aud, iat,
// exp and nonce; sub is "sub-" and the email claim) and how it is spoilt:
// "" (not), "badsig" (signed with a key not in the JWKS), "audience",
// "expired" or "nonce".
func (p *Provider) Next(claims map[string]any, tweak string) {
	p.mu.Lock()
	p.claims, p.tweak = claims, tweak
	p.mu.Unlock()
}
