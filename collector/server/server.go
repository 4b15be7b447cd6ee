package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/wardhq/ward/collector/pki"
	"github.com/wardhq/ward/collector/store"
	"github.com/wardhq/ward/collector/store/storeopen"
)

// Full method names.
const (
	MethodEnroll    = "/ward.v1.EnrollmentService/Enroll"
	MethodReport    = "/ward.v1.AgentService/Report"
	MethodGetPolicy = "/ward.v1.AgentService/GetPolicy"
	MethodRenew     = "/ward.v1.AgentService/Renew"
)

// DefaultLimits are the per-method maximum sizes of a decoded request.
var DefaultLimits = map[string]int{
	MethodEnroll:    64 << 10,
	MethodReport:    4 << 20,
	MethodGetPolicy: 4 << 10,
	MethodRenew:     8 << 10,
}

// DefaultServerCertLifetime is the validity of the server certificate the
// collector issues itself.
const DefaultServerCertLifetime = pki.DefaultServerLifetime

// defaultLimit bounds every other method (health, reflection).
const defaultLimit = 64 << 10

// DatabaseFile is the SQLite file's name under the data directory.
const DatabaseFile = storeopen.SQLiteFile

// Config configures a Server. Zero fields take the documented defaults.
type Config struct {
	// DataDir holds the database and the PKI (default ./ward-data).
	DataDir string
	// GRPCAddr (default 127.0.0.1:8443) and HTTPAddr (default
	// 127.0.0.1:8080) are listen addresses; port 0 picks a free one.
	GRPCAddr, HTTPAddr string
	// Hostnames are the DNS names and IP addresses in the server
	// certificate (default localhost, 127.0.0.1, ::1).
	Hostnames []string
	// Interval is the agents' report interval; a device is stale after
	// 3 × Interval without a report (default 1h).
	Interval time.Duration
	// Logger receives the logs (default slog.Default()).
	Logger *slog.Logger
	// Store replaces the store StoreSpec names; the caller closes it.
	Store store.Store
	// StoreSpec names the store (see package storeopen): "" or "sqlite"
	// for DataDir's SQLite file, a postgres:// URL for PostgreSQL.
	StoreSpec string
	// Limits overrides DefaultLimits per full method name.
	Limits map[string]int
	// RateLimit and RateBurst bound each device's AgentService calls
	// (default 5/s, burst 50).
	RateLimit rate.Limit
	RateBurst int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Retention is how long report history is kept (default
	// DefaultRetention, 400 days; negative keeps everything): older
	// reports are pruned at start and hourly, except what the state as
	// of any time inside the window needs (docs/durability.md,
	// "Retention").
	Retention time.Duration
	// DeviceCertLifetime is the validity of the device certificates it
	// issues (default pki.DefaultDeviceLifetime, 90 days); agents renew
	// at 2/3 of it.
	DeviceCertLifetime time.Duration
	// ServerCertLifetime is the validity of the server certificate it
	// issues itself (default 1 year); it renews at 2/3 of it, while serving.
	ServerCertLifetime time.Duration
	// IdentityTTL is how long a connection's device identity is reused
	// before the store is asked again whether its certificate or device
	// was revoked (default DefaultIdentityTTL; negative: every call).
	IdentityTTL time.Duration
	// GRPC tunes the gRPC front (grpc.go); zero values take its defaults.
	GRPC GRPCOptions
	// HTTP tunes the HTTP server (http.go); zero values take its defaults.
	HTTP HTTPOptions
	// CAKey, if set, keeps the CA in the store (store.Secrets), sealed
	// with this key, shared by every collector on the store; otherwise
	// the CA is in DataDir/pki (docs/multi-collector.md).
	CAKey *pki.CAKey
	// Web, if set, is given the store and serves every HTTP path that
	// health and metrics do not (the dashboard).
	Web func(store.Store) (http.Handler, error)
	// Gauges bounds the compliance gauges on /metrics (gauges.go).
	Gauges GaugeOptions
	// Events, if set, is told of each new enrolment, for webhooks and
	// the SIEM stream (events.Recorder writes it to the store's outbox).
	Events EventRecorder
}

// EventRecorder records an event that happened on st (events.Recorder).
type EventRecorder interface {
	Record(ctx context.Context, st store.Store, e store.Event)
}

// Server is a running (or ready to run) collector.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     store.Store
	ownsStore bool
	// pki is the CA and the server certificate it signed, replaced as a
	// whole when the CA in the store is rotated (shared.go).
	pki       atomic.Pointer[pkiState]
	created   bool
	tlsConfig *tls.Config
	limits    map[string]int
	metrics   *metrics
	gauges    gauges
	limiter   *limiters
	policies  *policyCache
	// feeds is the current release feed and the feed key (feed.go).
	feeds feeds
	ids   *identities
	// evidence remembers what this process has recorded as evidence
	// (records.go).
	evidence *recorded
	// shared is what this collector shares with the others on its store.
	shared shared
	// listening is whether changes by other collectors are notified now.
	listening atomic.Bool
	changeMu  sync.Mutex
	onChange  []func(store.Change)

	grpc   *grpcFront
	health *health.Server
	http   *http.Server

	mu       sync.Mutex
	grpcLis  net.Listener
	httpLis  net.Listener
	serveErr chan error
	stopped  bool
	// stopPrune ends the prune loop and the change subscription; pruned
	// is closed when both have.
	stopPrune context.CancelFunc
	pruned    chan struct{}
}

// New opens the store and the PKI under cfg.DataDir, creating the CA and
// the server certificate on first start. It does not listen yet.
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "ward-data"
	}
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = "127.0.0.1:8443"
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	if len(cfg.Hostnames) == 0 {
		cfg.Hostnames = []string{"localhost", "127.0.0.1", "::1"}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 5
	}
	if cfg.RateBurst == 0 {
		cfg.RateBurst = 50
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.IdentityTTL == 0 {
		cfg.IdentityTTL = DefaultIdentityTTL
	}
	s := &Server{cfg: cfg, log: cfg.Logger, limits: map[string]int{}}
	for m, n := range DefaultLimits {
		s.limits[m] = n
	}
	for m, n := range cfg.Limits {
		s.limits[m] = n
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	ran := ranBefore(cfg.DataDir) // before LoadOrCreate makes a CA
	s.store = cfg.Store
	if s.store == nil {
		st, err := storeopen.Open(context.Background(), cfg.StoreSpec, cfg.DataDir, ran)
		if err != nil {
			if !storeopen.IsSQLite(cfg.StoreSpec) {
				return nil, refuseStartPostgres(cfg.DataDir, cfg.StoreSpec, err)
			}
			return nil, refuseStart(cfg.DataDir, filepath.Join(cfg.DataDir, DatabaseFile), ran, err)
		}
		s.store, s.ownsStore = st, true
	}
	if err := s.setUpPKI(); err != nil {
		if s.ownsStore {
			s.store.Close()
		}
		return nil, err
	}
	s.metrics = newMetrics()
	s.limiter = newLimiters(cfg.RateLimit, cfg.RateBurst)
	s.shared = sharedFor(s.store)
	s.ids = newIdentities(cfg.IdentityTTL)
	s.policies = newPolicyCache()
	s.evidence = newRecorded()

	s.newGRPC()
	s.CheckStoredPolicies(context.Background())
	var (
		web http.Handler
		err error
	)
	if cfg.Web != nil {
		if web, err = cfg.Web(s.store); err != nil {
			if s.ownsStore {
				s.store.Close()
			}
			return nil, err
		}
	}
	s.http = s.newHTTP(web)
	return s, nil
}

// CAFingerprint is the CA's "sha256:<hex>" fingerprint agents pin.
func (s *Server) CAFingerprint() string { return s.authority().Fingerprint() }

// CA is the collector's certificate authority.
func (s *Server) CA() *pki.Authority { return s.authority() }

// CACreated reports whether New created the CA (first start).
func (s *Server) CACreated() bool { return s.created }

// Store is the server's store.
func (s *Server) Store() store.Store { return s.store }

// GRPCAddr is the gRPC listen address (the actual one after Start).
func (s *Server) GRPCAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpcLis != nil {
		return s.grpcLis.Addr().String()
	}
	return s.cfg.GRPCAddr
}

// HTTPAddr is the HTTP listen address (the actual one after Start).
func (s *Server) HTTPAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpLis != nil {
		return s.httpLis.Addr().String()
	}
	return s.cfg.HTTPAddr
}

// Start listens on both addresses and serves in the background; it
// returns at once. Serving errors are returned by Wait.
func (s *Server) Start() error {
	gl, err := net.Listen("tcp", s.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen gRPC: %w", err)
	}
	hl, err := s.listenHTTP()
	if err != nil {
		gl.Close()
		return fmt.Errorf("listen HTTP: %w", err)
	}
	pctx, stopPrune := context.WithCancel(context.Background())
	pruned := make(chan struct{})
	s.mu.Lock()
	s.grpcLis, s.httpLis = gl, hl
	s.serveErr = make(chan error, 2)
	s.stopPrune, s.pruned = stopPrune, pruned
	s.mu.Unlock()
	go func() {
		defer close(pruned)
		var wg sync.WaitGroup
		wg.Go(func() { s.followChanges(pctx) })
		s.pruneLoop(pctx)
		wg.Wait()
	}()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, name := range []string{"ward.v1.EnrollmentService", "ward.v1.AgentService"} {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	go func() { s.serveErr <- s.serveGRPC(gl) }()
	go func() {
		if err := s.serveHTTP(hl); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- err
		}
	}()
	s.log.Info("collector listening", "grpc_addr", gl.Addr().String(), "http_addr", hl.Addr().String(),
		"ca_fingerprint", s.CAFingerprint(), "data_dir", s.cfg.DataDir)
	return nil
}

// Serve starts the server and runs until ctx is done (then stops
// gracefully and returns nil) or serving fails.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Start(); err != nil {
		return err
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-s.serveErr:
	}
	s.Stop()
	return err
}

// Stop stops serving (letting calls in flight finish for up to 10 s) and
// closes the store it opened. It is safe to call more than once.
func (s *Server) Stop() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	stopPrune, pruned := s.stopPrune, s.pruned
	s.mu.Unlock()
	if stopPrune != nil {
		stopPrune()
		<-pruned
	}
	s.stopGRPC()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s.stopHTTP(ctx)
	cancel()
	if s.ownsStore {
		if err := s.store.Close(); err != nil {
			s.log.Error("close store", "err", err)
		}
	}
	s.log.Info("collector stopped")
}
