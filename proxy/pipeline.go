package proxy

import (
	"errors"
	"net/http"
	"net/netip"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/elazarl/goproxy"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/deliver"
	"github.com/postern/postern/proxy/guard"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/proxy/store"
	"github.com/postern/postern/rewrite"
)

// handle is the one pipeline every request goes through, in README's
// order: admit -> route -> parse -> guard -> deliver -> answer -> audit.
// Each step either passes the request on or refuses it (refuse.go); every
// way out writes exactly one audit line. It always returns a response of
// its own, so goproxy never contacts an upstream itself.
func (s *Server) handle(r *http.Request, pctx *goproxy.ProxyCtx) (*http.Request, *http.Response) {
	return r, s.serve(r, pctx, false)
}

// serve is handle; front says the answer goes to the front (serveFront).
func (s *Server) serve(r *http.Request, pctx *goproxy.ProxyCtx, front bool) *http.Response {
	defer s.track().end()
	p := &pipeline{s: s, rt: s.rt.Load(), r: r, start: time.Now(), front: front, ip: clientIP(r)}
	p.a = records.Get().(*audit.Record)
	defer releaseRecord(p.a)
	*p.a = audit.Record{Client: clientString(r, p.ip), Mode: requestMode(pctx), Method: r.Method}
	if ref := p.admit(pctx); ref != nil {
		return p.refuse(ref)
	}
	if ref := p.route(); ref != nil {
		return p.refuse(ref)
	}
	msg, ref := p.parse()
	if ref != nil {
		return p.refuse(ref)
	}
	if ref := p.guard(msg); ref != nil {
		return p.refuse(ref)
	}
	d, ref := p.deliver(msg)
	if ref != nil {
		return p.refuse(ref)
	}
	return p.answer(d)
}

// records holds the audit records of requests in flight for reuse: a
// record is about 450 bytes, a tenth of what a message allocated. Nothing
// keeps one past serve: writeAudit reads it while serve waits (metrics,
// and the line made straight into a buffer or slog's attributes, which
// copy its values), and what outlives it (the strings and lists it points
// at) is never written again.
var records = sync.Pool{New: func() any { return new(audit.Record) }}

// releaseRecord empties a and returns it to records.
func releaseRecord(a *audit.Record) {
	*a = audit.Record{}
	records.Put(a)
}

// pipeline is one request on its way through handle.
type pipeline struct {
	s     *Server
	rt    *runtime // one config from start to end, whatever a reload does
	r     *http.Request
	ip    netip.Addr // the client's (clientIP)
	start time.Time
	a     *audit.Record
	rte   *config.Route // set by route
	front bool          // the answer goes to the front, which only reads it

	// With [cluster], admit leaves per_client to guard, so that a message
	// delivered asks the store once (per_client, per_number, daily_max and
	// the duplicate claim in one script): clientDeferred is set while that
	// check is owed, and admitted is the audit record as admit left it. A
	// request refused before guard's rate step still owes it, and is
	// answered as admit would have answered if per_client refuses it
	// (refuse, clientRefusal).
	clientDeferred bool
	admitted       audit.Record
	key            deliver.Key   // the message's key, set by guard
	claimed        store.Claimed // its claim, asked with the limits
}

// admit decides who is asking: allow_clients, proxy authentication (or the
// intercepted tunnel's), the per_client budget, and the plaintext http
// scheme of an absolute-form request.
func (p *pipeline) admit(pctx *goproxy.ProxyCtx) *refusal {
	cfg, r := p.rt.cfg, p.r
	if !cfg.ClientAllowed(p.ip) {
		return refuseClient
	}
	user, reason := guard.CheckProxyAuth(&cfg.Guards, r)
	if sess := tunnelSession(pctx); sess != nil {
		// Authenticated (or not required) when the tunnel was accepted.
		user, reason = sess.proxyUser, ""
	}
	if reason != "" {
		return refuseProxyAuth(reason)
	}
	p.a.ProxyUser = user
	// A request with a body is checked here, before the body is read, as
	// without [cluster]: a client over its budget does not get postern to
	// read what it sends. ISE's GETs have none.
	if p.rt.guards.DefersClient() && r.ContentLength == 0 {
		p.clientDeferred, p.admitted = true, *p.a
	} else if ref := p.clientRefusal(p.rt.guards.AllowClient(r.Context(), p.a.Client)); ref != nil {
		return ref
	}
	// An absolute-form request names its scheme: postern takes ISE's
	// plaintext http only, and refuses ftp://, https:// and the rest
	// before routing, so nothing about them is sent anywhere.
	if p.a.Mode == "proxy" && r.URL.Scheme != "http" {
		return refuseScheme
	}
	return nil
}

// clientRefusal is what admit answers for a per_client verdict v (nil:
// admitted). A deferred check that refuses puts the audit record back as
// admit left it, so the request is answered and audited exactly as if
// admit had refused it: before routing, in no dialect.
func (p *pipeline) clientRefusal(v guard.Verdict) *refusal {
	deferred := p.clientDeferred
	p.clientDeferred = false
	if v.Err == nil && v.Limit != metrics.LimitPerClient {
		noteStore(p.a, v.Store)
		return nil
	}
	if deferred {
		*p.a, p.rte = p.admitted, nil
	}
	noteStore(p.a, v.Store)
	if v.Err != nil {
		return refuseStoreDownEarly
	}
	p.s.metrics.RateLimitHit(metrics.LimitPerClient)
	return refusePerClient
}

// route finds the first [[route]] that serves the request; none is a 403.
func (p *pipeline) route() *refusal {
	p.rte = p.rt.cfg.Match(p.r.URL.Host, p.r.URL.Path)
	if p.rte == nil {
		return refuseNoRoute
	}
	p.a.Route, p.a.Provider = p.rte.Name, p.rte.ProviderName
	return nil
}

// parse reads the request within its size limits, checks the route's
// legacy credentials, and has the route's dialect turn it into a message
// within the route's recipient and part limits.
func (p *pipeline) parse() (rewrite.Message, *refusal) {
	route := p.rte
	in, perr := readInbound(p.r, &p.rt.cfg.Guards)
	if perr != nil {
		return rewrite.Message{}, refuseRequest(perr)
	}
	if !guard.CheckLegacyAuth(route, in) {
		return rewrite.Message{}, refuseLegacyAuth()
	}
	msg, err := route.Dialect.Parse(in)
	if err != nil {
		var e *rewrite.Error
		if !errors.As(err, &e) {
			e = rewrite.BadRequest(rewrite.CodeMissingParams, "Invalid or missing parameters")
		}
		return msg, refuseRequest(e)
	}
	p.a.To, p.a.Chars = audit.MaskAll(msg.To), utf8.RuneCountInString(msg.Text)
	p.a.Segments = rewrite.CountSegments(msg.Text).Count
	if len(msg.To) > route.MaxRecipients {
		return msg, refuseRequest(rewrite.BadRequest(rewrite.CodeMissingParams, "Too many recipients"))
	}
	if p.a.Segments > route.MaxSegments {
		return msg, refuseRequest(rewrite.BadRequest(rewrite.CodeTooManyParts, "Maximum message parts exceeded"))
	}
	return msg, nil
}

// guard applies the destination and rate guardrails to the recipients,
// recording each recipient's country. With [cluster] the rate limits (and
// a deferred per_client) and the message's duplicate claim are one store
// round trip (guard.State.AdmitAll).
func (p *pipeline) guard(msg rewrite.Message) *refusal {
	countries, reason := p.rt.guards.CheckDestinations(msg.To)
	p.a.Country = countries
	if reason != "" {
		return refuseDestination(reason)
	}
	p.key = p.rt.deliver.Key(p.rte, msg)
	id, ttl := p.rt.deliver.ClaimAsk(p.key)
	v, claimed := p.rt.guards.AdmitAll(p.r.Context(), p.a.Client, p.clientDeferred, msg.To, id, ttl)
	p.claimed = claimed
	if p.clientDeferred {
		if ref := p.clientRefusal(v); ref != nil {
			return ref
		}
	} else {
		noteStore(p.a, v.Store)
	}
	if v.Err != nil {
		return refuseStoreDown()
	}
	if v.Limit != "" {
		p.s.metrics.RateLimitHit(v.Limit)
		return refuseRateLimit(v.Limit)
	}
	return nil
}

// deliver builds, sends and reads, once per identical message in flight.
// The message is finished even if ISE hangs up: once accepted it must end
// delivered, refused or unknown — never abandoned half-sent — so the
// client's cancellation is not inherited: the sending context descends
// from stopSends, not from the request's, so that only the end of the
// shutdown grace period cuts it short (no request context value is used
// past this point). request_timeout counts from the request's start, so
// that time spent before the send (a slow shared store) does not push the
// answer past it.
func (p *pipeline) deliver(msg rewrite.Message) (deliver.Delivery, *refusal) {
	ctx := deliver.SendContextUntil(p.s.stopSends, p.start.Add(p.rt.cfg.RequestTimeout))
	defer ctx.End()
	d := p.rt.deliver.DeliverClaimed(ctx, p.rte, msg, p.key, p.claimed)
	p.a.ClientMsgID, p.a.Joined = d.ClientMsgID, d.Joined
	noteStore(p.a, d.Store)
	if d.Busy {
		return d, refuseBusy()
	}
	if d.StoreDown {
		return d, refuseStoreDown()
	}
	return d, nil
}

// answer tells ISE the outcome in the route's legacy format and audits it.
func (p *pipeline) answer(d deliver.Delivery) *http.Response {
	a, res := p.a, d.Result
	a.TLS, a.Leaf, a.Attempts = d.Info.TLSVersion, d.Info.LeafSHA256, d.Attempts
	a.Upstream = d.Info.Host
	outcome, code, reason := deliver.Summarize(res)
	for _, rc := range res.Recipients {
		if rc.ID != "" {
			a.IDs = append(a.IDs, rc.ID)
		}
	}
	var resp *http.Response
	if p.front {
		resp = frontAnswerResponse(p.r, p.rte.Dialect.Reply(res))
	} else {
		resp = replyResponse(p.r, p.rte.Dialect.Reply(res))
	}
	a.Outcome, a.Status, a.Code, a.Reason = outcome, resp.StatusCode, code, p.rt.cfg.Redact(reason)
	p.audit()
	return resp
}

// refuse answers ref and audits it. A request refused before routing
// records what it asked for, so an operator can tell a typo in ISE's URL
// from a stranger probing; never the query (credentials, text).
func (p *pipeline) refuse(ref *refusal) *http.Response {
	if p.clientDeferred {
		// Refused before guard's rate step: per_client, which admit
		// checks first, is asked now, and answers if it refuses.
		if early := p.clientRefusal(p.rt.guards.AllowClient(p.r.Context(), p.a.Client)); early != nil {
			ref = early
		}
	}
	var dialect rewrite.Dialect
	if p.rte != nil {
		dialect = p.rte.Dialect
	} else {
		p.a.Host, p.a.Path = asked(p.r.URL.Host), asked(p.r.URL.Path)
	}
	resp := ref.answer(p.r, p.a, dialect, p.rt.cfg.Redact)
	p.audit()
	return resp
}

// audit writes the request's one audit line.
func (p *pipeline) audit() {
	p.a.Latency = time.Since(p.start)
	p.s.writeAudit(p.r.Context(), p.a)
}

// track marks one request in flight, in the server's count (which a shutdown
// reports when it cuts messages off) and the in-flight gauge, until the
// returned value's end is called (a value, not a closure: no allocation).
func (s *Server) track() tracked {
	s.flights.Add(1)
	return tracked{s: s, gauge: s.metrics.Started()}
}

// tracked is one request tracked in flight.
type tracked struct {
	s     *Server
	gauge func()
}

func (t tracked) end() {
	t.gauge()
	t.s.flights.Add(-1)
}
