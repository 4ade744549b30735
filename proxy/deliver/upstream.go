package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/rewrite"
	"github.com/postern/postern/trust"
)

// maxProviderReply bounds how much of a provider's reply postern reads. Real
// replies are a few hundred bytes per recipient.
const maxProviderReply = 1 << 20

// Info is what the audit log needs to know about the upstream exchange.
type Info struct {
	TLSVersion string
	LeafSHA256 string
	Host       string // the provider host the TLS connection was verified for
}

// sender delivers a parsed message and reports one outcome per recipient.
// It never returns an error: every failure becomes a recipient outcome.
type sender interface {
	Send(ctx context.Context, m rewrite.Message) (rewrite.Result, Info)
}

// httpSender sends through a rewrite.Provider over postern's own verified
// client: the HTTP/1.1 pool (fast) for https endpoints unless the route
// asks for HTTP/2, else net/http.
type httpSender struct {
	provider  rewrite.Provider
	client    Client // net/http: HTTP/2 when offered, or the injected Transport
	fast      Client // nil: every request goes through client
	observe   metrics.Observer
	userAgent string

	// With a Poster provider over FastClient, requests are the prepared
	// head and the body appended in place: no *http.Request per message.
	poster rewrite.Poster
	post   *PreparedPost
	posts  postClient
}

// postClient is a Client that also sends a rewrite.Poster's requests from
// their rendered parts (FastClient), timing each itself (Reply.Took).
type postClient interface {
	ExchangeMessage(ctx context.Context, p *PreparedPost, poster rewrite.Poster, m rewrite.Message) (rep Reply, built, err error)
}

// preparePosts sends h's requests as prepared POSTs when its provider and
// fast client allow it.
func (h *httpSender) preparePosts() {
	poster, ok := h.provider.(rewrite.Poster)
	if !ok {
		return
	}
	pc, ok := h.fast.(postClient)
	if !ok {
		return
	}
	if p, ok := PreparePost(poster, h.userAgent); ok {
		h.poster, h.post, h.posts = poster, p, pc
	}
}

// UserAgent is the User-Agent postern sends to providers: "postern/" and
// the running version, so a provider's support desk can tell which build
// sent a request.
func UserAgent(version string) string {
	return "postern/" + version
}

func (h *httpSender) Send(ctx context.Context, m rewrite.Message) (rewrite.Result, Info) {
	max := h.provider.MaxRecipients()
	if max <= 0 || len(m.To) <= max {
		// One request, the usual case: its result is the message's,
		// without the batches' list and a copy of the recipients.
		res, info := h.sendBatch(ctx, m)
		if info.TLSVersion == "" {
			info = Info{}
		}
		return res, info
	}
	var res rewrite.Result
	var info Info
	for _, batch := range batches(m, max) {
		r, bi := h.sendBatch(ctx, batch)
		res.Recipients = append(res.Recipients, r.Recipients...)
		if bi.TLSVersion != "" {
			info = bi
		}
	}
	return res, info
}

// batches splits m so that no request carries more recipients than a
// provider accepts.
func batches(m rewrite.Message, max int) []rewrite.Message {
	if max <= 0 || len(m.To) <= max {
		return []rewrite.Message{m}
	}
	var out []rewrite.Message
	for start := 0; start < len(m.To); start += max {
		b := m
		b.To = m.To[start:min(start+max, len(m.To))]
		out = append(out, b)
	}
	return out
}

// exchange builds m's request and sends it. A build error comes back as
// built; host is the provider host the request went to.
func (h *httpSender) exchange(ctx context.Context, m rewrite.Message) (rep Reply, host string, built, err error) {
	if h.post != nil {
		rep, built, err = h.posts.ExchangeMessage(ctx, h.post, h.poster, m)
		if built != nil {
			return Reply{}, "", built, nil
		}
		h.observe.Observe(rep.Took) // the fast client's own readings
		return rep, h.post.host, nil, err
	}
	req, err := h.provider.Build(ctx, m)
	if err != nil {
		return Reply{}, "", err, nil
	}
	// Providers see who is calling, never Go's default "Go-http-client".
	req.Header.Set("User-Agent", h.userAgent)
	client := h.client
	if h.fast != nil && req.URL.Scheme == "https" {
		client = h.fast
	}
	sent := time.Now()
	rep, err = client.Exchange(ctx, req)
	h.observe.Observe(time.Since(sent))
	return rep, req.URL.Hostname(), nil, err
}

func (h *httpSender) sendBatch(ctx context.Context, m rewrite.Message) (rewrite.Result, Info) {
	var info Info
	rep, host, built, err := h.exchange(ctx, m)
	if built != nil {
		return failAll(m, &rewrite.Error{Status: http.StatusInternalServerError, Code: rewrite.CodeInternal,
			Description: "Internal error", Outcome: rewrite.Refused, Cause: fmt.Errorf("building request: %w", built)}), info
	}
	if err != nil {
		reason, tlsErr := trust.DescribeTLSError(err)
		badCert := tlsErr && reason != trust.ReasonHandshake
		// A client quotes a malformed reply (net/http's "malformed HTTP
		// response ...", from either client): provider bytes, masked
		// and cut before they reach the audit line. A certificate error
		// quotes no reply but carries the AIA explanation, which may be
		// longer.
		limit := rewrite.MaxProviderErrorDetail
		if badCert {
			limit = rewrite.MaxTLSErrorDetail
		}
		err = rewrite.SanitizeProviderError(err, m.Text, limit)
		return failAll(m, markNotWritten(ctx, classifyTransportError(ctx, err, rep.Wrote), rep.Wrote, badCert)), info
	}
	info = rep.Info
	if info.TLSVersion != "" {
		info.Host = host
	}
	if rep.BodyErr != nil && rep.Status/100 == 2 {
		// The provider said yes but we could not read which ids it gave.
		return failAll(m, &rewrite.Error{Status: http.StatusBadGateway, Code: rewrite.CodeInternal,
			Description: "Provider reply unreadable, outcome unknown", Outcome: rewrite.Unknown,
			Cause: fmt.Errorf("reading %d reply: %w", rep.Status, rewrite.SanitizeProviderError(rep.BodyErr, m.Text, rewrite.MaxProviderErrorDetail))}), info
	}
	res := h.provider.Read(m, rewrite.Response{Status: rep.Status, Header: rep.Header, Body: rep.Body})
	return markThrottled(rep.Status, rep.Header, res), info
}

// classifyTransportError decides what ISE is told when no HTTP reply came
// back. The distinction that matters is whether the request may have reached
// the provider: a message is "not sent" only when nothing was written.
func classifyTransportError(ctx context.Context, err error, wrote bool) *rewrite.Error {
	e := &rewrite.Error{Status: http.StatusBadGateway, Code: rewrite.CodeInternal, Outcome: rewrite.Refused, Cause: err}
	// Nothing written means nothing accepted: another provider may try.
	e.Failover = !wrote
	if reason, ok := trust.DescribeTLSError(err); ok && !wrote {
		e.Description = "Upstream TLS verification failed: " + reason
		return e
	}
	timedOut := errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		timedOut = true
	}
	switch {
	case timedOut && wrote:
		e.Status, e.Outcome, e.Description = http.StatusGatewayTimeout, rewrite.Unknown, "Upstream timeout, outcome unknown"
	case timedOut:
		e.Status, e.Description = http.StatusGatewayTimeout, "Upstream timeout, message not sent"
	case wrote:
		e.Outcome, e.Description = rewrite.Unknown, "Upstream connection failed, outcome unknown"
	default:
		e.Description = "Upstream unreachable, message not sent"
	}
	return e
}

func failAll(m rewrite.Message, e *rewrite.Error) rewrite.Result {
	res := rewrite.Result{Recipients: make([]rewrite.Recipient, len(m.To))}
	for i, to := range m.To {
		res.Recipients[i] = rewrite.Recipient{To: to, Err: e}
	}
	return res
}

// sandboxSender accepts every message and sends nothing, loudly. It lets a
// newcomer try postern, and an ISE admin test a configuration, without a
// provider account and without a guest getting a text.
type sandboxSender struct {
	route string
	log   *slog.Logger
	seq   atomic.Uint64
}

func (s *sandboxSender) Send(ctx context.Context, m rewrite.Message) (rewrite.Result, Info) {
	res := rewrite.Result{Recipients: make([]rewrite.Recipient, len(m.To))}
	for i, to := range m.To {
		res.Recipients[i] = rewrite.Recipient{To: to, ID: "sandbox-" + strconv.FormatUint(s.seq.Add(1), 10), Sandbox: true}
	}
	s.log.LogAttrs(ctx, slog.LevelWarn, "sandbox: message accepted but NOT SENT",
		slog.String("route", s.route), slog.Any("to", audit.MaskAll(m.To)),
		slog.Int("chars", len([]rune(m.Text))), slog.Bool("not_sent", true))
	return res, Info{}
}
