package proxy

import (
	"fmt"
	"time"
)

// Reload swaps in cfg for every request that starts from now on. Requests
// already in the pipeline finish on the configuration (and the upstream
// connections) they started with. Listen addresses are not reopened: a
// changed listen or admin_listen needs a restart, and Reload says so.
func (s *Server) Reload(cfg *Config) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.reloadLocked(cfg)
}

func (s *Server) reloadLocked(cfg *Config) {
	next := newRuntime(cfg, s.opts, s.log, s.metrics)
	// Rate limits and the daily cap protect the bill across reloads: a
	// reload (or a SIGHUP meant to rotate the audit file) must not hand out
	// a fresh budget.
	next.guards.inherit(s.rt.Load().guards)
	old := s.rt.Swap(next)
	s.metrics.reloaded(true)
	// Idle connections of the old transport go now; those still carrying a
	// request are closed once the longest such request must have ended.
	old.transport.CloseIdleConnections()
	time.AfterFunc(old.cfg.RequestTimeout+time.Second, old.transport.CloseIdleConnections)
	if cfg.Listen != old.cfg.Listen || cfg.AdminListen != old.cfg.AdminListen {
		s.log.Warn("config reloaded, but listen and admin_listen changes take effect only after a restart",
			"listen", old.cfg.Listen, "admin_listen", old.cfg.AdminListen)
	}
	if cfg.RequestTimeout > old.cfg.RequestTimeout {
		s.log.Warn("config reloaded: a longer request_timeout is bounded by the old one's write timeout until a restart")
	}
	s.log.Info("config reloaded", "config", cfg.Source, "routes", len(cfg.Routes),
		"upstream_roots", cfg.Roots.Report().String())
}

// ReloadFrom loads a new configuration with load and swaps it in. When load
// fails, the error is logged and returned and the old configuration keeps
// serving; the failure is counted in postern_config_reloads_total.
func (s *Server) ReloadFrom(load func() (*Config, error)) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cfg, err := load()
	if err != nil {
		s.metrics.reloaded(false)
		s.log.Error("config reload rejected; the previous configuration keeps serving", "err", err.Error())
		return fmt.Errorf("reload rejected, previous configuration still serving: %w", err)
	}
	s.reloadLocked(cfg)
	return nil
}
