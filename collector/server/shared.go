package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/memshared"
)

// shared is what several collectors on one store share beyond the store's
// own data (docs/multi-collector.md): the store's implementations when it
// has them (PostgreSQL), this process's memory otherwise (SQLite serves one
// collector).
type shared struct {
	limits  store.RateLimits
	state   store.SharedState
	changes store.Changes
}

func sharedFor(st store.Store) shared {
	local := memshared.New(0)
	sh := shared{limits: local, state: local, changes: local}
	if l, ok := st.(store.RateLimits); ok {
		sh.limits = l
	}
	if l, ok := st.(store.SharedState); ok {
		sh.state = l
	}
	if l, ok := st.(store.Changes); ok {
		sh.changes = l
	}
	return sh
}

// SharedState is where the dashboard keeps its sign-in backoff: the
// store's when several collectors share it, else this process's memory.
func (s *Server) SharedState() store.SharedState { return s.shared.state }

// setUpPKI loads the CA (from the store with cfg.CAKey, else from
// DataDir/pki, creating it on first start) and the server certificate.
func (s *Server) setUpPKI() error {
	cfg := s.cfg
	ctx := context.Background()
	sec, canShare := s.store.(store.Secrets)
	var (
		ca      *pki.Authority
		created bool
		err     error
	)
	switch {
	case cfg.CAKey != nil && !canShare:
		return errors.New("--ca-key-file: this store cannot share a CA between collectors (a SQLite file serves one collector, whose CA is in its data directory); drop the flag, or use PostgreSQL")
	case cfg.CAKey != nil:
		if own, err := pki.Load(cfg.DataDir, cfg.Now()); !errors.Is(err, pki.ErrNoCA) {
			if err != nil {
				return fmt.Errorf("load CA: %w", err)
			}
			return fmt.Errorf("%s holds a CA of its own (%s) while --ca-key-file keeps the CA in the store: move it in with ward-collector ca import, or move the directory's pki/ca.* aside", filepath.Join(cfg.DataDir, "pki"), own.Fingerprint())
		}
		if _, err := pki.LoadShared(ctx, sec, cfg.CAKey, cfg.Now()); errors.Is(err, pki.ErrNoCA) {
			// A store without a CA is a new fleet, unless this collector
			// served before: then it is the wrong or a lost database.
			if _, serr := os.Stat(filepath.Join(cfg.DataDir, "pki", "server.crt")); serr == nil {
				return fmt.Errorf("the store holds no CA, but this collector served before (%s): wrong or lost database? Restore it (docs/durability.md), or move %s aside to start a new fleet",
					filepath.Join(cfg.DataDir, "pki", "server.crt"), filepath.Join(cfg.DataDir, "pki"))
			}
		}
		if ca, created, err = pki.LoadOrCreateShared(ctx, sec, cfg.CAKey, cfg.Now(), 0); err != nil {
			return fmt.Errorf("load the CA from the store: %w", err)
		}
		if err := os.MkdirAll(filepath.Join(cfg.DataDir, "pki"), 0o700); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Join(cfg.DataDir, "pki"), err)
		}
	default:
		if ca, created, err = pki.LoadOrCreate(cfg.DataDir, cfg.Now()); err != nil {
			return fmt.Errorf("load CA: %w", err)
		}
		if canShare {
			// No second CA may appear beside this one on a shared store.
			if err := pki.ClaimFileCA(ctx, sec, ca); err != nil {
				return fmt.Errorf("CA of %s: %w", cfg.DataDir, err)
			}
		}
	}
	s.created = created
	st, err := s.newPKIState(ca)
	if err != nil {
		return err
	}
	s.pki.Store(st)
	s.tlsConfig = &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Renewed at 2/3 of its lifetime by the handshake that finds it
		// due; the current CA's, after a rotation in the store.
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return s.pki.Load().certs.GetCertificate(h) },
		// Asked for, verified by the auth interceptor: see the package doc.
		ClientAuth: tls.RequestClientCert,
	}
	return nil
}

// OnChange registers f to be called with every change any collector on
// the store makes (store.ChangeAll: drop everything), for the caches of
// other packages (the dashboard). Register before Start.
func (s *Server) OnChange(f func(store.Change)) {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	s.onChange = append(s.onChange, f)
}

// followChanges keeps the caches in step with what other collectors
// change until ctx ends.
func (s *Server) followChanges(ctx context.Context) {
	err := s.shared.changes.SubscribeChanges(ctx, s.changed, func(ok bool) {
		was := s.listening.Swap(ok)
		switch {
		case ok && !was:
			s.log.Info("following changes made by other collectors")
		case !ok && was && ctx.Err() == nil:
			s.log.Warn("lost the change notifications of other collectors; until they are back, a change made elsewhere takes effect here after the caches' lifetime", "identity_ttl", s.cfg.IdentityTTL)
		}
	})
	if err != nil && ctx.Err() == nil {
		s.log.Error("change notifications ended", "err", err)
	}
	s.listening.Store(false)
}

func (s *Server) changed(c store.Change) {
	switch c.Kind {
	case store.ChangeDevice:
		s.ids.forget(c.ID)
	case store.ChangePolicy:
		s.clearPolicies()
	case store.ChangeFeed:
		s.forgetFeed()
	case store.ChangeCA, store.ChangeAll:
		s.ids.forgetAll()
		s.clearPolicies()
		s.forgetFeed()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s.reloadCA(ctx, c.Kind == store.ChangeCA)
		cancel()
	}
	s.changeMu.Lock()
	fs := s.onChange
	s.changeMu.Unlock()
	for _, f := range fs {
		f(c)
	}
}

// pkiState is the CA a collector signs with and the certificates it
// accepts and presents.
type pkiState struct {
	ca *pki.Authority
	// clientPool holds the CAs whose device certificates are accepted.
	clientPool *x509.CertPool
	certs      *pki.ServerCerts
}

func (s *Server) authority() *pki.Authority { return s.pki.Load().ca }

// newPKIState loads (issuing it if needed) the server certificate of ca.
// Each collector has its own server certificate (its own host names),
// signed by the CA they share.
func (s *Server) newPKIState(ca *pki.Authority) (*pkiState, error) {
	ca.DeviceLifetime = s.cfg.DeviceCertLifetime
	certs, err := ca.ServerCerts(s.cfg.DataDir, s.cfg.Hostnames, s.cfg.ServerCertLifetime, s.cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	certs.OnRenew = func(leaf *x509.Certificate, err error) {
		if err != nil {
			s.log.Error("server certificate renewal failed; retrying in a minute", "err", err)
			return
		}
		s.log.Info("server certificate renewed", "serial", pki.SerialString(leaf.SerialNumber), "not_after", leaf.NotAfter)
	}
	return &pkiState{ca: ca, clientPool: ca.ClientPool(), certs: certs}, nil
}

// reloadCA loads the CA from the store again after another collector
// (or ca rotate, ca import) changed it, and serves with it from the next
// handshake on: a new server certificate signed by it, its device
// certificates and the previous CAs' accepted. Connections open stay as
// they are. On failure it keeps the CA it has.
func (s *Server) reloadCA(ctx context.Context, announced bool) {
	sec, ok := s.store.(store.Secrets)
	if !ok || s.cfg.CAKey == nil {
		if announced {
			s.log.Warn("the CA in the store changed; this collector uses the CA of its data directory and keeps it")
		}
		return
	}
	ca, err := pki.LoadShared(ctx, sec, s.cfg.CAKey, s.cfg.Now())
	if err != nil {
		s.log.Error("reload the CA from the store; keeping the current one", "err", err)
		return
	}
	if ca.Fingerprint() == s.authority().Fingerprint() && len(ca.Previous) == len(s.authority().Previous) {
		return
	}
	st, err := s.newPKIState(ca)
	if err != nil {
		s.log.Error("server certificate of the reloaded CA; keeping the current CA", "err", err)
		return
	}
	s.pki.Store(st)
	s.log.Info("serving with the CA from the store", "ca_fingerprint", ca.Fingerprint(), "previous_cas", len(ca.Previous))
}

func (s *Server) clearPolicies() {
	s.policies.mu.Lock()
	clear(s.policies.m)
	s.policies.mu.Unlock()
}
