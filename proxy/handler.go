package proxy

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/elazarl/goproxy"

	"github.com/postern/postern/rewrite"
)

// Request limits. ISE's requests are a few hundred bytes; anything far larger
// is a mistake or an attack.
const (
	maxURLBytes    = 8 << 10
	maxBodyBytes   = 64 << 10
	maxHeaderBytes = 32 << 10
)

type modeKey struct{}

// direct serves origin-form requests ("GET /http/sendmsg?..."), sent when
// ISE's SMS URL names postern or when DNS points the provider's name at
// postern. The URL is made absolute from the Host header and the request
// re-enters goproxy, so all three ways in share one pipeline.
func (s *Server) direct(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(context.WithValue(r.Context(), modeKey{}, "direct"))
	r.URL.Scheme = "http"
	r.URL.Host = r.Host
	s.gp.ServeHTTP(w, r)
}

// refuseConnect answers every CONNECT with 403: postern cannot rewrite what
// it cannot read, and a blind tunnel would make it an open proxy.
func (s *Server) refuseConnect(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
	r := ctx.Req
	a := &auditRecord{Client: clientIP(r).String(), Mode: "proxy", Method: http.MethodConnect,
		Outcome: "refused", Status: http.StatusForbidden, Reason: "CONNECT is not allowed", refusal: RefusalConnect}
	s.writeAudit(r.Context(), a)
	ctx.Resp = textResponse(r, http.StatusForbidden, "Forbidden: postern does not tunnel CONNECT\n")
	return goproxy.RejectConnect, host
}

// handle is the one pipeline every request goes through. It always returns a
// response of its own, so goproxy never contacts an upstream itself.
func (s *Server) handle(r *http.Request, _ *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	start := time.Now()
	defer s.track()()
	rt := s.rt.Load()
	cfg := rt.cfg
	mode, _ := r.Context().Value(modeKey{}).(string)
	if mode == "" {
		mode = "proxy"
	}
	a := &auditRecord{Client: clientIP(r).String(), Mode: mode, Method: r.Method}
	refuse := func(status int, refusal, reason, body string) *http.Response {
		a.Outcome, a.Status, a.Reason, a.Latency, a.refusal = "refused", status, reason, time.Since(start), refusal
		s.writeAudit(r.Context(), a)
		return textResponse(r, status, body)
	}

	// 1. admit
	if !cfg.ClientAllowed(clientIP(r)) {
		return r, refuse(http.StatusForbidden, RefusalClientNotAllowed, "client not in allow_clients", "Forbidden: client not allowed\n")
	}
	// 2. route
	route := cfg.Match(r.URL.Host, r.URL.Path)
	if route == nil {
		return r, refuse(http.StatusForbidden, RefusalNoRoute, "no route matches", "Forbidden: no route matches this request\n")
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
	in, perr := readInbound(r)
	if perr != nil {
		return r, fail(perr)
	}
	msg, err := route.dialect.Parse(in)
	if err != nil {
		var e *rewrite.Error
		if !errors.As(err, &e) {
			e = rewrite.BadRequest(rewrite.CodeMissingParams, "Invalid or missing parameters")
		}
		return r, fail(e)
	}
	a.To, a.Chars = maskAll(msg.To), utf8.RuneCountInString(msg.Text)
	if len(msg.To) > route.MaxRecipients {
		return r, fail(rewrite.BadRequest(rewrite.CodeMissingParams, "Too many recipients"))
	}
	// 4-6. build, send, read. The message is finished even if ISE hangs up:
	// once accepted it must end delivered, refused or unknown — never
	// abandoned half-sent — so the client's cancellation is not inherited.
	// Only the end of the shutdown grace period cuts it short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), cfg.RequestTimeout)
	defer cancel()
	defer context.AfterFunc(s.stopSends, cancel)()
	res, info := rt.senders[route].Send(ctx, msg)
	a.TLS, a.Leaf = info.TLSVersion, info.LeafSHA256
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
func summarize(res rewrite.Result) (outcome, code, reason string) {
	delivered, unknown := 0, 0
	var first *rewrite.Error
	for _, rc := range res.Recipients {
		switch {
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
	case first == nil:
		return "delivered", "", ""
	case delivered > 0:
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
func readInbound(r *http.Request) (rewrite.Inbound, *rewrite.Error) {
	in := rewrite.Inbound{Method: r.Method, Host: hostOnly(r.URL.Host), Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	if len(r.URL.RawQuery)+len(r.URL.Path) > maxURLBytes {
		return in, &rewrite.Error{Status: http.StatusRequestURITooLong, Code: rewrite.CodeMissingParams,
			Description: "Invalid or missing parameters: URL too long", Outcome: rewrite.Refused}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil {
			in.ContentType = mt
		}
	}
	if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		switch {
		case err != nil:
			return in, rewrite.BadRequest(rewrite.CodeMissingParams, "Invalid or missing parameters: unreadable body")
		case len(body) > maxBodyBytes:
			return in, &rewrite.Error{Status: http.StatusRequestEntityTooLarge, Code: rewrite.CodeMissingParams,
				Description: "Invalid or missing parameters: body too large", Outcome: rewrite.Refused}
		}
		in.Body = body
	}
	return in, nil
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
