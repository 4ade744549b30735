package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// AdminHandler serves the admin endpoints:
//
//	GET  /metrics    Prometheus text format
//	GET  /healthz    200 "ok" while the process runs
//	GET  /readyz     200 "ready" while a config is loaded and the listener is up, else 503
//	POST /-/reload   re-read the configuration with load (as SIGHUP does)
//
// load may be nil, in which case /-/reload answers 501. The admin listener
// belongs on loopback or a management network: it takes no input beyond
// "reload now", but its metrics describe the traffic.
func (s *Server) AdminHandler(load func() (*Config, error)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		adminText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() || s.rt.Load() == nil {
			adminText(w, http.StatusServiceUnavailable, "not ready\n")
			return
		}
		adminText(w, http.StatusOK, "ready\n")
	})
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, r *http.Request) {
		if load == nil {
			adminText(w, http.StatusNotImplemented, "reload is not available for this configuration\n")
			return
		}
		res, err := s.ReloadAndReport(load)
		if err != nil {
			w.Header().Set(ReloadResultHeader, ReloadRejected)
			adminText(w, http.StatusUnprocessableEntity, err.Error()+"\n")
			return
		}
		w.Header().Set(ReloadResultHeader, res.Outcome())
		adminText(w, http.StatusOK, res.Text())
	})
	return mux
}

func adminText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// ServeAdmin serves [Server.AdminHandler] on ln until ctx is cancelled. It
// stays up while the main listener drains, so probes see /readyz go 503.
func (s *Server) ServeAdmin(ctx context.Context, ln net.Listener, load func() (*Config, error)) error {
	hs := &http.Server{
		Handler:           s.AdminHandler(load),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving admin %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutting down admin: %w", err)
	}
	return nil
}

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }
