package server

import (
	"context"
	"net"
	"net/http"
	"time"
)

// HTTPOptions tunes the HTTP server (health, readiness, metrics, the
// dashboard).
type HTTPOptions struct{}

// newHTTP builds the HTTP server around web (the dashboard, or nil).
func (s *Server) newHTTP(web http.Handler) *http.Server {
	return &http.Server{Handler: s.httpHandler(web), ReadHeaderTimeout: 10 * time.Second}
}

// serveHTTP serves HTTP on l until stopHTTP.
func (s *Server) serveHTTP(l net.Listener) error { return s.http.Serve(l) }

// stopHTTP shuts the HTTP server down gracefully within ctx.
func (s *Server) stopHTTP(ctx context.Context) { s.http.Shutdown(ctx) }

func (s *Server) httpHandler(web http.Handler) http.Handler {
	mux := http.NewServeMux()
	if web != nil {
		mux.Handle("/", web)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.store.Health(ctx); err != nil {
			reason := notReady(err)
			s.log.Error("readiness: "+reason, "err", err)
			http.Error(w, "not ready: "+reason, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.metrics.write(w)
	})
	return mux
}
