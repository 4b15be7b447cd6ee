package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// HTTPOptions tunes the HTTP server (health, readiness, metrics, the
// dashboard). Zero fields take the defaults below.
type HTTPOptions struct {
	// AllowedHosts are the names (or IP addresses) the dashboard and
	// /metrics answer to in the Host header; any other Host gets 421
	// Misdirected Request, so a page on another site cannot reach them by
	// DNS rebinding. Default: Config.Hostnames and the host of
	// Config.HTTPAddr (and of MetricsAddr, on that listener) unless it is
	// a wildcard. /healthz and /readyz answer any Host.
	AllowedHosts []string
	// MetricsAddr, if set, moves /metrics to a listener of its own (and
	// off the main HTTP listener).
	MetricsAddr string
	// MetricsToken, if set, is the bearer token /metrics requires
	// (Authorization: Bearer <token>) wherever it is served. Without it,
	// /metrics on the main listener answers only loopback peers that are
	// neither a trusted proxy nor forwarding for someone (no
	// X-Forwarded-For, Forwarded or X-Real-IP); on MetricsAddr it answers
	// whoever can reach that address.
	MetricsToken string
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For is believed (the dashboard's sign-in throttle and
	// audit log use the client address it names).
	TrustedProxies []netip.Prefix
	// Timeouts and limits of every HTTP connection (defaults:
	// DefaultReadHeaderTimeout and so on). WriteTimeout bounds a response;
	// a streaming one (the export) extends its own deadline.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
}

// The HTTP server's default limits.
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included
	// (dashboard bodies are at most 2 MiB: a policy upload).
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds handling a request and writing its
	// response.
	DefaultWriteTimeout = time.Minute
	// DefaultIdleTimeout closes a kept-alive connection idle that long.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes bounds a request's header block.
	DefaultMaxHeaderBytes = 64 << 10
)

// httpFront is the HTTP side: the main server's handler, and the metrics
// server when /metrics has a listener of its own.
type httpFront struct {
	s       *Server
	opts    HTTPOptions
	mux     *http.ServeMux
	hosts   map[string]bool // the main listener's allowed hosts
	token   [sha256.Size]byte
	metrics *http.Server // nil unless MetricsAddr
	mlis    net.Listener // the metrics listener once listening
}

// newHTTP builds the HTTP server around web (the dashboard, or nil).
func (s *Server) newHTTP(web http.Handler) *http.Server {
	o := s.cfg.HTTP
	o.ReadHeaderTimeout = orDefault(o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	o.ReadTimeout = orDefault(o.ReadTimeout, DefaultReadTimeout)
	o.WriteTimeout = orDefault(o.WriteTimeout, DefaultWriteTimeout)
	o.IdleTimeout = orDefault(o.IdleTimeout, DefaultIdleTimeout)
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	f := &httpFront{s: s, opts: o, hosts: allowedHosts(o.AllowedHosts, s.cfg.Hostnames, s.cfg.HTTPAddr)}
	if o.MetricsToken != "" {
		f.token = sha256.Sum256([]byte(o.MetricsToken))
	}
	mux := http.NewServeMux()
	if web != nil {
		mux.Handle("/", f.hostChecked(f.hosts, web))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if o.MetricsAddr == "" {
		mux.Handle("GET /metrics", f.hostChecked(f.hosts, f.metricsHandler(true)))
	} else {
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", f.hostChecked(allowedHosts(o.AllowedHosts, s.cfg.Hostnames, o.MetricsAddr), f.metricsHandler(false)))
		f.metrics = f.server(mm)
	}
	f.mux = mux
	return f.server(f)
}

func (f *httpFront) server(h http.Handler) *http.Server {
	o := f.opts
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
	}
}

func (f *httpFront) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// front is the server's HTTP side.
func (s *Server) front() *httpFront { return s.http.Handler.(*httpFront) }

// listenHTTP listens on the HTTP address and, when /metrics has its own,
// on the metrics address.
func (s *Server) listenHTTP() (net.Listener, error) {
	l, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return nil, err
	}
	f := s.front()
	if f.metrics != nil {
		ml, err := net.Listen("tcp", f.opts.MetricsAddr)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("metrics: %w", err)
		}
		s.mu.Lock()
		f.mlis = ml
		s.mu.Unlock()
		if ap, err := netip.ParseAddrPort(ml.Addr().String()); f.opts.MetricsToken == "" && (err != nil || !ap.Addr().IsLoopback()) {
			s.log.Warn("/metrics is open to anyone who can reach its address; pass a token file or a loopback address", "metrics_addr", ml.Addr().String())
		}
	}
	return l, nil
}

// MetricsAddr is the address of /metrics' own listener after Start, or ""
// when /metrics is on the main HTTP listener.
func (s *Server) MetricsAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.front(); f.mlis != nil {
		return f.mlis.Addr().String()
	}
	return ""
}

// serveHTTP serves HTTP on l (and metrics on their own listener) until
// stopHTTP.
func (s *Server) serveHTTP(l net.Listener) error {
	f := s.front()
	s.mu.Lock()
	ml := f.mlis
	s.mu.Unlock()
	if ml == nil {
		return s.http.Serve(l)
	}
	errc := make(chan error, 2)
	go func() { errc <- f.metrics.Serve(ml) }()
	go func() { errc <- s.http.Serve(l) }()
	err := <-errc
	if errors.Is(err, http.ErrServerClosed) {
		err = <-errc
	}
	return err
}

// stopHTTP shuts the HTTP servers down gracefully within ctx.
func (s *Server) stopHTTP(ctx context.Context) {
	if m := s.front().metrics; m != nil {
		m.Shutdown(ctx)
	}
	s.http.Shutdown(ctx)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Health(ctx); err != nil {
		reason := notReady(err)
		s.log.Error("readiness: "+reason, "err", err)
		http.Error(w, "not ready: "+reason, http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

// allowedHosts is the set of Host names to answer: explicit, or the
// certificate's names and the listen address's host.
func allowedHosts(explicit, hostnames []string, listen string) map[string]bool {
	m := map[string]bool{}
	names := explicit
	if len(names) == 0 {
		names = append([]string(nil), hostnames...)
		if h, _, err := net.SplitHostPort(listen); err == nil {
			if ip, err := netip.ParseAddr(h); h != "" && (err != nil || !ip.IsUnspecified()) {
				names = append(names, h)
			}
		}
	}
	for _, n := range names {
		m[canonicalHost(n)] = true
	}
	return m
}

// canonicalHost lowercases a host name and drops a trailing dot, IPv6
// brackets and zone; IP addresses are written the one way.
func canonicalHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")), ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.WithZone("").Unmap().String()
	}
	return h
}

// requestHost is the Host header's host, without the port.
func requestHost(r *http.Request) string {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return canonicalHost(h)
}

// hostChecked answers 421 to a request whose Host is not in hosts.
func (f *httpFront) hostChecked(hosts map[string]bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := requestHost(r); !hosts[h] {
			f.s.log.Warn("http: Host not allowed", "host", truncate(r.Host, 100), "path", truncate(r.URL.Path, 200), "peer", r.RemoteAddr)
			http.Error(w, "misdirected request: this server does not answer to that host name (see --allowed-host)", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// metricsHandler serves /metrics; onMain says it shares the dashboard's
// listener (then, without a token, only direct loopback peers get it).
func (f *httpFront) metricsHandler(onMain bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case f.opts.MetricsToken != "":
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
			if !ok || subtle.ConstantTimeCompare(sum[:], f.token[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="ward-metrics"`)
				http.Error(w, "metrics: a bearer token is required", http.StatusUnauthorized)
				return
			}
		case onMain && !f.directLoopback(r):
			http.Error(w, "metrics: only for loopback without a token (see --metrics-token-file, --metrics-addr)", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		f.s.metrics.write(w)
		f.s.writeGauges(r.Context(), w)
	})
}

// directLoopback reports whether the request comes from a loopback peer
// that is not a trusted proxy and forwards for no one.
func (f *httpFront) directLoopback(r *http.Request) bool {
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return false
	}
	for _, p := range f.opts.TrustedProxies {
		if p.Contains(ap.Addr().Unmap()) {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes for a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
