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
	if s.opts.InterceptCA == nil || !cfg.interceptsHost(host) || !cfg.ClientAllowed(clientIP(ctx.Req)) {
		return s.refuseConnect(host, ctx)
	}
	ctx.UserData = interceptMode
	return &goproxy.ConnectAction{Action: goproxy.ConnectMitm, TLSConfig: s.interceptTLS}, host
}

// interceptTLS is goproxy's TLSConfig callback for intercepted hosts.
func (s *Server) interceptTLS(host string, _ *goproxy.ProxyCtx) (*tls.Config, error) {
	return s.opts.InterceptCA.ServerTLSConfig(hostOnly(host))
}

// requestMode says how a request reached the pipeline, for the audit line:
// "intercept" inside a CONNECT tunnel, "direct" for origin-form, else
// "proxy".
func requestMode(r *http.Request, ctx *goproxy.ProxyCtx) string {
	if ctx != nil {
		if m, ok := ctx.UserData.(string); ok && m == interceptMode {
			return interceptMode
		}
	}
	if m, ok := r.Context().Value(modeKey{}).(string); ok && m != "" {
		return m
	}
	return "proxy"
}
