package proxy

import (
	"crypto/tls"
	"net/http"

	"github.com/elazarl/goproxy"
)

// interceptMode marks requests read from inside an intercepted CONNECT
// tunnel. goproxy carries ProxyCtx.UserData from the CONNECT to each inner
// request, which is how handle learns where a request came from.
const interceptMode = "intercept"

// connect decides a CONNECT: hosts listed in [intercept] hosts, asked by an
// allowed client, get their TLS terminated by postern with a leaf from its
// own interception CA, and the requests inside go through the same pipeline
// as every other request. Everything else is refused with 403: a blind
// tunnel would make postern an open proxy.
func (s *Server) connect(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	cfg := s.Config()
	if s.opts.InterceptCA == nil || !cfg.interceptsHost(host) {
		return s.refuseConnect(host, ctx)
	}
	if resp := s.authorizeConnect(ctx); resp != nil {
		ctx.Resp = resp
		return goproxy.RejectConnect, host
	}
	// Clients send Proxy-Authorization with the CONNECT only, not with the
	// requests inside the tunnel: the session remembers who authenticated.
	user, _ := checkProxyAuth(&cfg.Guards, ctx.Req)
	ctx.UserData = &interceptSession{proxyUser: user}
	return &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: s.interceptTLS}, host
}

// interceptSession is carried by goproxy from an accepted CONNECT to every
// request read inside its tunnel.
type interceptSession struct {
	proxyUser string // "" when proxy authentication is off
}

// tunnelSession returns the session of a request read inside an intercepted
// CONNECT, or nil.
func tunnelSession(ctx *goproxy.ProxyCtx) *interceptSession {
	if ctx == nil {
		return nil
	}
	sess, _ := ctx.UserData.(*interceptSession)
	return sess
}

// interceptTLS is goproxy's TLSConfig callback for intercepted hosts.
func (s *Server) interceptTLS(host string, _ *goproxy.ProxyCtx) (*tls.Config, error) {
	return s.opts.InterceptCA.ServerTLSConfig(hostOnly(host))
}

// requestMode says how a request reached the pipeline, for the audit line:
// "intercept" inside a CONNECT tunnel, "direct" for origin-form, else
// "proxy".
func requestMode(r *http.Request, ctx *goproxy.ProxyCtx) string {
	if tunnelSession(ctx) != nil {
		return interceptMode
	}
	if m, ok := r.Context().Value(modeKey{}).(string); ok && m != "" {
		return m
	}
	return "proxy"
}
