package proxy

import (
	"net"
	"net/http"

	"github.com/elazarl/goproxy"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/guard"
)

// connect decides a CONNECT: hosts listed in [intercept] hosts, asked by an
// allowed client, get their TLS terminated by postern with a leaf from its
// own interception CA, and the requests inside go through the same pipeline
// as every other request (intercept.go runs the tunnel). Everything else is
// refused with 403: a blind tunnel would make postern an open proxy.
func (s *Server) connect(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	cfg := s.Config()
	ic := s.opts.InterceptCA
	if ic == nil || !cfg.InterceptsHost(host) {
		// postern cannot rewrite what it cannot read.
		if ref := s.authorizeConnect(ctx); ref != nil {
			return s.rejectConnect(ctx, host, asked(ctx.Req.Host), ref)
		}
		return s.rejectConnect(ctx, host, asked(host), refuseConnect)
	}
	if ref := s.authorizeConnect(ctx); ref != nil {
		return s.rejectConnect(ctx, host, asked(ctx.Req.Host), ref)
	}
	name := config.HostOnly(host)
	if !ic.Permits(name) {
		// Listed in [intercept] hosts (added after the CA was made), but
		// outside the CA's name constraints: no leaf is minted for it.
		fit := ic.Fit(cfg.InterceptHosts)
		s.log.Warn("CONNECT refused: [intercept] hosts lists a host the interception CA does not permit",
			"host", name, "ca_permits", fit.Permitted, "fix", fit.NewCAHowTo())
		return s.rejectConnect(ctx, host, "", refuseConnectOutsideCA)
	}
	// Clients send Proxy-Authorization with the CONNECT only, not with the
	// requests inside the tunnel: the session remembers who authenticated.
	user, _ := guard.CheckProxyAuth(&cfg.Guards, ctx.Req)
	sess := &interceptSession{proxyUser: user, host: name}
	// postern runs the tunnel itself rather than goproxy's MITM loop, which
	// drops a request it cannot read without a reply or an audit line and
	// logs the parser's error, which quotes the request line (see
	// serveTunnel).
	return &goproxy.ConnectAction{Action: goproxy.ConnectHijack,
		Hijack: func(r *http.Request, conn net.Conn, _ *goproxy.ProxyCtx) { s.serveTunnel(r, conn, sess) }}, host
}

// authorizeConnect checks a CONNECT against allow_clients and proxy
// authentication, the same admission every CONNECT passes first. It
// returns nil when the tunnel may be considered.
func (s *Server) authorizeConnect(ctx *goproxy.ProxyCtx) *refusal {
	cfg := s.Config()
	if !cfg.ClientAllowed(clientIP(ctx.Req)) {
		return refuseClient
	}
	if _, reason := guard.CheckProxyAuth(&cfg.Guards, ctx.Req); reason != "" {
		return refuseProxyAuth(reason)
	}
	return nil
}

// rejectConnect answers a refused CONNECT (goproxy writes ctx.Resp) and
// audits it; target is the host:port it asked for, "" to leave it out.
func (s *Server) rejectConnect(ctx *goproxy.ProxyCtx, host, target string, ref *refusal) (*goproxy.ConnectAction, string) {
	r := ctx.Req
	a := &audit.Record{Client: clientIP(r).String(), Mode: "proxy", Method: http.MethodConnect, Target: target}
	ctx.Resp = ref.answer(r, a, nil, nil)
	s.writeAudit(r.Context(), a)
	return goproxy.RejectConnect, host
}
