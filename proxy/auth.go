package proxy

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/elazarl/goproxy"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/rewrite"
)

// proxyAuthRealm is what a client is told to authenticate for.
const proxyAuthRealm = `Basic realm="postern", charset="UTF-8"`

// checkProxyAuth verifies Proxy-Authorization: Basic against [server]
// proxy_user and proxy_password. It returns the user the client claimed
// (for the audit line, only when it matched) and a refusal reason, "" when
// the request may proceed. goproxy only strips proxy headers when it
// forwards a request itself, which postern never lets it do, so the header
// is still present here, in all three ways in.
func checkProxyAuth(g *Guards, r *http.Request) (user, reason string) {
	if g.ProxyUser == "" {
		return "", ""
	}
	h := r.Header.Get("Proxy-Authorization")
	if h == "" {
		return "", "proxy authentication missing"
	}
	scheme, cred, _ := strings.Cut(h, " ")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if !strings.EqualFold(scheme, "Basic") || err != nil {
		return "", "proxy authentication malformed"
	}
	u, p, _ := strings.Cut(string(raw), ":")
	if equalSecret(u, g.ProxyUser)&equalSecret(p, g.proxyPassword) != 1 {
		return "", "proxy authentication failed"
	}
	return g.ProxyUser, ""
}

// proxyAuthRequired is the 407 answer that asks the client for credentials.
func proxyAuthRequired(r *http.Request) *http.Response {
	resp := textResponse(r, http.StatusProxyAuthRequired, "Proxy authentication required\n")
	resp.Header.Set("Proxy-Authenticate", proxyAuthRealm)
	return resp
}

// authorizeConnect checks a CONNECT against allow_clients and proxy
// authentication. It returns nil when the tunnel may be considered, else the
// response to reject it with (ctx.Resp + goproxy.RejectConnect), already
// audited and counted. Every CONNECT handler calls it first.
func (s *Server) authorizeConnect(ctx *goproxy.ProxyCtx) *http.Response {
	r := ctx.Req
	cfg := s.rt.Load().cfg
	a := &audit.Record{Client: clientIP(r).String(), Mode: "proxy", Method: http.MethodConnect, Target: asked(r.Host),
		Outcome: "refused", Status: http.StatusForbidden}
	if !cfg.ClientAllowed(clientIP(r)) {
		a.Reason, a.Refusal = "client not in allow_clients", metrics.RefusalClientNotAllowed
		s.writeAudit(r.Context(), a)
		return textResponse(r, http.StatusForbidden, "Forbidden: client not allowed\n")
	}
	_, reason := checkProxyAuth(&cfg.Guards, r)
	if reason != "" {
		a.Status, a.Reason, a.Refusal = http.StatusProxyAuthRequired, reason, metrics.RefusalAuthFailed
		s.writeAudit(r.Context(), a)
		return proxyAuthRequired(r)
	}
	return nil
}

// checkLegacyAuth verifies the legacy credentials a route requires. It
// reports false when the route requires them and in does not carry them.
func checkLegacyAuth(route *Route, in rewrite.Inbound) bool {
	if !route.Legacy.Required() {
		return true
	}
	cr, ok := route.dialect.(rewrite.CredentialReader)
	return ok && route.Legacy.Match(cr.Credentials(in))
}
