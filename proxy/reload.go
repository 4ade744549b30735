package proxy

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
)

// ReloadResult is what a reload applied and what it could not.
type ReloadResult struct {
	Source string // the config now serving
	Routes int
	// RestartNeeded lists each change in the new config that only a
	// restart applies, as "listen changed: restart needed". Everything
	// else in the config is serving.
	RestartNeeded []string
}

// Reload swaps in cfg for every request that starts from now on. Requests
// already in the pipeline finish on the configuration (and the upstream
// connections) they started with. Listeners are not reopened: what only a
// restart applies is logged (see [Server.ReloadAndReport]).
func (s *Server) Reload(cfg *config.Config) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.reloadLocked(cfg)
}

func (s *Server) reloadLocked(cfg *config.Config) ReloadResult {
	next := newRuntime(cfg, s.opts, s.log, s.metrics, s.joins, s.stopSends)
	s.attachStore(next)
	// Rate limits and the daily cap protect the bill across reloads: a
	// reload (or a SIGHUP meant to rotate the audit file) must not hand out
	// a fresh budget.
	prev := s.rt.Load()
	next.guards.Inherit(prev.guards)
	next.deliver.Inherit(prev.deliver)
	old := s.rt.Swap(next)
	if s.opts.AuditSinks != nil {
		s.opts.AuditSinks.SetChainKey(cfg.Audit.ChainKey)
	}
	s.metrics.Reloaded(true)
	// Idle connections of the old transport go now; those still carrying a
	// request are closed once the longest such request must have ended.
	old.transport.CloseIdleConnections()
	time.AfterFunc(old.cfg.RequestTimeout+time.Second, old.transport.CloseIdleConnections)
	old.fast.Close() // its connections in use close when their request ends
	res := ReloadResult{Source: cfg.Source, Routes: len(cfg.Routes), RestartNeeded: restartNeeded(s.started, cfg, s.opts.InterceptCA != nil)}
	if len(res.RestartNeeded) > 0 {
		s.log.Warn("config reloaded, but some changes take effect only after a restart", "restart_needed", res.RestartNeeded)
	}
	s.log.Info("config reloaded", "config", cfg.Source, "routes", len(cfg.Routes),
		"upstream_roots", cfg.Roots.Report().String())
	return res
}

// restartNeeded compares a new config with the one postern started with
// (not the previous reload: a change that waits for a restart keeps
// waiting) and lists what a reload cannot apply: the listeners and their
// timeouts, [smtp]'s listen, hostname and max_message_bytes (its greeting
// and SIZE are set when the listener starts), the HTTPS listener's certificate source, the data directory,
// the audit sinks, and interception when no interception CA was loaded.
func restartNeeded(started, next *config.Config, haveInterceptCA bool) []string {
	var out []string
	changed := func(c bool, what string) {
		if c {
			out = append(out, what+" changed: restart needed")
		}
	}
	changed(next.Listen != started.Listen, "listen")
	changed(next.AdminListen != started.AdminListen, "admin_listen")
	changed(next.ListenTLS != started.ListenTLS, "listen_tls")
	changed(!sameTLSSource(next.TLS, started.TLS), "[tls]")
	changed(next.DataDir != started.DataDir, "data_dir")
	changed(next.SMTP.Listen != started.SMTP.Listen, "[smtp] listen")
	changed(next.SMTP.Hostname != started.SMTP.Hostname, "[smtp] hostname")
	changed(next.SMTP.MaxMessageBytes != started.SMTP.MaxMessageBytes, "[smtp] max_message_bytes")
	changed(next.Guards.HeaderReadTimeout != started.Guards.HeaderReadTimeout, "header_read_timeout")
	if next.RequestTimeout > started.RequestTimeout {
		out = append(out, fmt.Sprintf("request_timeout changed: restart needed (until then replies are cut off after %s, the start-up write timeout)",
			started.RequestTimeout+10*time.Second))
	}
	changed(!sameAuditSinks(next.Audit, started.Audit), "[audit]")
	if !haveInterceptCA && len(next.InterceptHosts) > 0 {
		out = append(out, "[intercept] hosts changed: restart needed (the interception CA is loaded at start-up)")
	}
	return out
}

func sameTLSSource(a, b config.TLSSettings) bool {
	return a.Mode == b.Mode && a.CertFile == b.CertFile && a.KeyFile == b.KeyFile && slices.Equal(a.Names, b.Names) &&
		a.ACMEDirectory == b.ACMEDirectory && a.ACMEEmail == b.ACMEEmail && a.ACMEChallenge == b.ACMEChallenge &&
		a.ACMEHTTPListen == b.ACMEHTTPListen
}

func sameAuditSinks(a, b audit.Config) bool {
	return a.Console == b.Console && a.File == b.File && urlString(a.Syslog) == urlString(b.Syslog) &&
		a.SyslogFacility == b.SyslogFacility && a.Queue == b.Queue
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// ReloadFrom loads a new configuration with load and swaps it in. When load
// fails, the error is logged and returned and the old configuration keeps
// serving; the failure is counted in postern_config_reloads_total.
func (s *Server) ReloadFrom(load func() (*config.Config, error)) error {
	_, err := s.ReloadAndReport(load)
	return err
}

// ReloadAndReport is [Server.ReloadFrom] that also says what the new
// configuration changes that only a restart applies.
func (s *Server) ReloadAndReport(load func() (*config.Config, error)) (ReloadResult, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cfg, err := load()
	if err != nil {
		s.metrics.Reloaded(false)
		s.log.Error("config reload rejected; the previous configuration keeps serving", "err", err.Error())
		return ReloadResult{}, fmt.Errorf("reload rejected, previous configuration still serving: %w", err)
	}
	return s.reloadLocked(cfg), nil
}

// The admin listener's POST /-/reload says how a reload went in this
// header, for `postern reload` to turn into its exit code; the body is for
// people.
const (
	ReloadResultHeader = "Postern-Reload"
	ReloadApplied      = "applied"        // 200: the new config serves, all of it
	ReloadNeedsRestart = "restart-needed" // 200: it serves, but some changes wait for a restart
	ReloadRejected     = "rejected"       // 422: the previous config still serves
)

// Outcome is ReloadApplied or ReloadNeedsRestart.
func (r ReloadResult) Outcome() string {
	if len(r.RestartNeeded) > 0 {
		return ReloadNeedsRestart
	}
	return ReloadApplied
}

// Text is the reply to POST /-/reload: what serves now, then one line per
// change that waits for a restart.
func (r ReloadResult) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "reloaded %s: %d routes\n", r.Source, r.Routes)
	for _, n := range r.RestartNeeded {
		b.WriteString(n + "\n")
	}
	return b.String()
}
