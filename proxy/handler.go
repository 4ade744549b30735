package proxy

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/elazarl/goproxy"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/rewrite"
)

// maxHeaderBytes limits request headers. ISE's requests are a few hundred
// bytes; anything far larger is a mistake or an attack. URL and body limits
// are configurable (max_url_bytes, max_body_bytes).
const maxHeaderBytes = 32 << 10

type modeKey struct{}

// direct serves origin-form requests ("GET /http/sendmsg?..."), sent when
// ISE's SMS URL names postern or when DNS points the provider's name at
// postern. The URL is made absolute from the Host header, so all three ways
// in share one pipeline.
func (s *Server) direct(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(context.WithValue(r.Context(), modeKey{}, "direct"))
	r.URL.Scheme = "http"
	r.URL.Host = r.Host
	s.servePipeline(w, r)
}

// refuseConnect answers every CONNECT with 403: postern cannot rewrite what
// it cannot read, and a blind tunnel would make it an open proxy.
func (s *Server) refuseConnect(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	r := ctx.Req
	if resp := s.authorizeConnect(ctx); resp != nil {
		ctx.Resp = resp
		return goproxy.RejectConnect, host
	}
	a := &audit.Record{Client: clientIP(r).String(), Mode: "proxy", Method: http.MethodConnect, Target: asked(host),
		Outcome: "refused", Status: http.StatusForbidden, Reason: "CONNECT is not allowed", Refusal: metrics.RefusalConnect}
	s.writeAudit(r.Context(), a)
	ctx.Resp = textResponse(r, http.StatusForbidden, "Forbidden: postern does not tunnel CONNECT\n")
	return goproxy.RejectConnect, host
}

// handle is the one pipeline every request goes through. It always returns a
// response of its own, so goproxy never contacts an upstream itself.
func (s *Server) handle(r *http.Request, pctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	start := time.Now()
	defer s.track()()
	rt := s.rt.Load()
	cfg := rt.cfg
	mode := requestMode(r, pctx)
	a := &audit.Record{Client: clientIP(r).String(), Mode: mode, Method: r.Method}
	refuse := func(status int, refusal, reason, body string) *http.Response {
		a.Outcome, a.Status, a.Reason, a.Latency, a.Refusal = "refused", status, reason, time.Since(start), refusal
		// What was asked for, so an operator can tell a typo in ISE's URL
		// from a stranger probing; never the query (credentials, text).
		a.Host, a.Path = asked(r.URL.Host), asked(r.URL.Path)
		s.writeAudit(r.Context(), a)
		return textResponse(r, status, body)
	}

	// 1. admit
	if !cfg.ClientAllowed(clientIP(r)) {
		return r, refuse(http.StatusForbidden, metrics.RefusalClientNotAllowed, "client not in allow_clients", "Forbidden: client not allowed\n")
	}
	user, reason := checkProxyAuth(&cfg.Guards, r)
	if sess := tunnelSession(pctx); sess != nil {
		// Authenticated (or not required) when the tunnel was accepted.
		user, reason = sess.proxyUser, ""
	}
	if reason != "" {
		resp := refuse(http.StatusProxyAuthRequired, metrics.RefusalAuthFailed, reason, "Proxy authentication required\n")
		resp.Header.Set("Proxy-Authenticate", proxyAuthRealm)
		return r, resp
	}
	a.ProxyUser = user
	if !rt.guards.allowClient(a.Client) {
		s.metrics.RateLimitHit(metrics.LimitPerClient)
		return r, refuse(http.StatusTooManyRequests, metrics.RefusalRateLimited, "per_client limit reached", throttledBody)
	}
	// An absolute-form request names its scheme: postern takes ISE's
	// plaintext http only, and refuses ftp://, https:// and the rest
	// before routing, so nothing about them is sent anywhere.
	if mode == "proxy" && r.URL.Scheme != "http" {
		a.Code = rewrite.CodeMissingParams
		return r, refuse(unreadableReply.Status, metrics.RefusalBadRequest, "absolute-form URL scheme is not http", unreadableReply.Body)
	}
	// 2. route
	route := cfg.Match(r.URL.Host, r.URL.Path)
	if route == nil {
		return r, refuse(http.StatusForbidden, metrics.RefusalNoRoute, "no route matches", "Forbidden: no route matches this request\n")
	}
	a.Route, a.Provider = route.Name, route.ProviderName
	answer := func(rep rewrite.Reply, outcome, code, reason string) *http.Response {
		a.Outcome, a.Status, a.Code, a.Reason, a.Latency = outcome, rep.Status, code, cfg.redact(reason), time.Since(start)
		s.writeAudit(r.Context(), a)
		return replyResponse(r, rep)
	}
	fail := func(e *rewrite.Error) *http.Response {
		reason := e.Description
		if e.Cause != nil {
			reason += ": " + e.Cause.Error()
		}
		return answer(route.dialect.ReplyError(e), e.Outcome.String(), e.Code, reason)
	}
	// 3. parse
	in, perr := readInbound(r, &cfg.Guards)
	if perr != nil {
		return r, fail(perr)
	}
	if !checkLegacyAuth(route, in) {
		a.Refusal = metrics.RefusalAuthFailed
		return r, fail(legacyAuthFailed())
	}
	msg, err := route.dialect.Parse(in)
	if err != nil {
		var e *rewrite.Error
		if !errors.As(err, &e) {
			e = rewrite.BadRequest(rewrite.CodeMissingParams, "Invalid or missing parameters")
		}
		return r, fail(e)
	}
	a.To, a.Chars = audit.MaskAll(msg.To), utf8.RuneCountInString(msg.Text)
	a.Segments = rewrite.CountSegments(msg.Text).Count
	if len(msg.To) > route.MaxRecipients {
		return r, fail(rewrite.BadRequest(rewrite.CodeMissingParams, "Too many recipients"))
	}
	if a.Segments > route.MaxSegments {
		return r, fail(rewrite.BadRequest(rewrite.CodeTooManyParts, "Maximum message parts exceeded"))
	}
	if e := s.admitMessage(rt, a, msg.To); e != nil {
		return r, fail(e)
	}
	// 4-6. build, send, read. The message is finished even if ISE hangs up:
	// once accepted it must end delivered, refused or unknown — never
	// abandoned half-sent — so the client's cancellation is not inherited.
	// Only the end of the shutdown grace period cuts it short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), cfg.RequestTimeout)
	defer cancel()
	defer context.AfterFunc(s.stopSends, cancel)()
	d, busy := s.sendOnce(ctx, rt, route, &msg, a)
	if busy {
		a.Refusal = metrics.RefusalBusy
		return r, fail(upstreamBusy())
	}
	res, info := d.Result, d.Info
	a.TLS, a.Leaf, a.Attempts = info.TLSVersion, info.LeafSHA256, d.Attempts
	// 7. answer, 8. audit
	outcome, code, reason := summarize(res)
	for _, rc := range res.Recipients {
		if rc.ID != "" {
			a.IDs = append(a.IDs, rc.ID)
		}
	}
	return r, answer(route.dialect.Reply(res), outcome, code, reason)
}

// summarize reduces per-recipient outcomes to the audit line's outcome.
// Recipients the sandbox took count as "sandbox", not delivered: nothing
// left the box.
func summarize(res rewrite.Result) (outcome, code, reason string) {
	delivered, unknown, sandbox := 0, 0, 0
	var first *rewrite.Error
	for _, rc := range res.Recipients {
		switch {
		case rc.Err == nil && rc.Sandbox:
			sandbox++
		case rc.Err == nil:
			delivered++
		case rc.Err.Outcome == rewrite.Unknown:
			unknown++
			fallthrough
		default:
			if first == nil {
				first = rc.Err
			}
		}
	}
	switch {
	case first == nil && sandbox == 0:
		return "delivered", "", ""
	case first == nil && delivered == 0:
		return audit.OutcomeSandbox, "", ""
	case first == nil:
		// Only a route whose fallback is a sandbox route gets here.
		return "partial", "", "sandbox: some recipients were not sent"
	case delivered > 0 || sandbox > 0:
		outcome = "partial"
	case unknown > 0:
		outcome = "unknown"
	default:
		outcome = "refused"
	}
	reason = first.Description
	if first.Cause != nil {
		reason += ": " + first.Cause.Error()
	}
	return outcome, first.Code, reason
}

// readInbound copies what a dialect may look at out of r, within limits.
func readInbound(r *http.Request, g *Guards) (rewrite.Inbound, *rewrite.Error) {
	in := rewrite.Inbound{Method: r.Method, Host: hostOnly(r.URL.Host), Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	if len(r.URL.RawQuery)+len(r.URL.Path) > g.MaxURLBytes {
		return in, &rewrite.Error{Status: http.StatusRequestURITooLong, Code: rewrite.CodeMissingParams,
			Description: "Invalid or missing parameters: URL too long", Outcome: rewrite.Refused}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil {
			in.ContentType = mt
		}
	}
	if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		body, err := io.ReadAll(io.LimitReader(r.Body, int64(g.MaxBodyBytes)+1))
		switch {
		case err != nil:
			return in, rewrite.BadRequest(rewrite.CodeMissingParams, "Invalid or missing parameters: unreadable body")
		case len(body) > g.MaxBodyBytes:
			return in, &rewrite.Error{Status: http.StatusRequestEntityTooLarge, Code: rewrite.CodeMissingParams,
				Description: "Invalid or missing parameters: body too large", Outcome: rewrite.Refused}
		}
		in.Body = body
	}
	return in, nil
}

// maxAsked bounds the client-chosen host, path or CONNECT target an audit
// line repeats, so a refused request cannot make its line arbitrarily long.
const maxAsked = 256

// asked returns s for an audit line, cut to maxAsked bytes.
func asked(s string) string {
	if len(s) <= maxAsked {
		return s
	}
	return strings.ToValidUTF8(s[:maxAsked], "") + "..."
}

func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func textResponse(r *http.Request, status int, body string) *http.Response {
	return replyResponse(r, rewrite.Reply{Status: status, ContentType: "text/plain; charset=utf-8", Body: body})
}

func replyResponse(r *http.Request, rep rewrite.Reply) *http.Response {
	resp := goproxy.NewResponse(r, rep.ContentType, rep.Status, rep.Body)
	// Replies carry message ids; no cache between ISE and postern keeps them.
	resp.Header.Set("Cache-Control", "no-store")
	resp.Header.Set("X-Content-Type-Options", "nosniff")
	return resp
}
