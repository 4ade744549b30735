package proxy

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/metrics"
)

// AdminHandler serves the admin endpoints:
//
//	GET  /metrics    Prometheus text format
//	GET  /healthz    200 "ok" while the process runs
//	GET  /readyz     200 "ready" while a config is loaded and the listener is up, else 503;
//	                 with [cluster] a second line says the store's state
//	                 (503 while it is down under on_store_error = "refuse")
//	POST /-/reload   re-read the configuration with load (as SIGHUP does)
//
// load may be nil, in which case /-/reload answers 501. The admin listener
// belongs on loopback or a management network: it takes no input beyond
// "reload now", but its metrics describe the traffic. A browser must not be
// able to drive it (see adminGuard).
func (s *Server) AdminHandler(load func() (*config.Config, error)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		adminText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		rt := s.rt.Load()
		if !s.ready.Load() || rt == nil {
			adminText(w, http.StatusServiceUnavailable, "not ready\n")
			return
		}
		storeLine, storeReady := rt.storeState()
		if !storeReady {
			adminText(w, http.StatusServiceUnavailable, "not ready\n"+storeLine)
			return
		}
		adminText(w, http.StatusOK, "ready\n"+storeLine)
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
	return s.adminGuard(mux)
}

// adminGuard refuses (403) what only a browser sends, as Caddy's admin
// endpoint does, so a web page cannot drive the admin listener:
//
//   - any Origin header: browsers send one with every POST and every
//     cross-origin fetch, so a page elsewhere cannot reload the config;
//     curl, postern reload, Prometheus and probes never do.
//   - a Host that names something else (DNS rebinding: a page on
//     evil.example whose name now resolves to 127.0.0.1 reads /metrics
//     same-origin, with no Origin). Accepted are "localhost", the host of
//     admin_listen, IP addresses — a rebinding page's Host is always its
//     own name, never an address — and no Host at all (HTTP/1.0). The port
//     is not compared: port forwarding changes it.
func (s *Server) adminGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Header["Origin"]; ok {
			s.log.Warn("admin request refused: it carries an Origin header (sent by browsers)",
				"client", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			adminText(w, http.StatusForbidden, "Forbidden: admin requests with an Origin header are refused\n")
			return
		}
		if !adminHostAllowed(r.Host, s.Config().AdminListen) {
			// The Host itself is not logged: it is the caller's text.
			s.log.Warn("admin request refused: its Host names neither this listener nor a loopback name",
				"client", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			adminText(w, http.StatusForbidden, "Forbidden: Host is not this admin listener\n")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminHostAllowed reports whether an admin request's Host header may be
// answered: empty, an IP address, localhost, or the host part of
// adminListen.
func adminHostAllowed(host, adminListen string) bool {
	if host == "" {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")), ".")
	if name == "" {
		return false
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return true
	}
	if name == "localhost" {
		return true
	}
	if own, _, err := net.SplitHostPort(adminListen); err == nil && own != "" {
		return strings.EqualFold(strings.TrimSuffix(own, "."), name)
	}
	return false
}

func adminText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// Metrics returns the server's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }
