package proxytest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/deliver"
	"github.com/postern/postern/proxy/guard"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/rewrite"
)

// OwnWork is postern's own work for one message, without sockets: what the
// pipeline (proxy/pipeline.go) does between reading ISE's request and
// writing the answer, step for step, with the same functions — admit
// (allow_clients, per_client), route, legacy credentials, the dialect's
// parse, masking and segment count, the destination and rate guardrails,
// the provider request's body (sent after the head prepared at start),
// reading the provider's reply, the legacy answer, metrics and one audit
// line. Left out, because they are I/O or belong to the sending side: the
// HTTP parsing of ISE's request and the writing of the answer, the
// single-flight key, the upstream slot and the provider round trip, which
// the caller's OwnWorkProvider makes.
//
// It serves two measurements: BenchmarkOwnWork and the allocation budget
// (proxy), with a canned reply; and the load benchmark's reference "relay
// fasthttp + own work" (bench), which puts this work on the cheapest Go
// HTTP stack measured here. An OwnWork is safe for concurrent use.
type OwnWork struct {
	cfg      *config.Config
	route    *config.Route
	guards   *guard.State
	metrics  *metrics.Metrics
	audit    *slog.Logger
	client   netip.Addr
	post     *deliver.PreparedPost
	header   http.Header
	attempts []audit.Attempt
}

// OwnWorkProvider makes the provider round trip of one message: post is
// the route's request head, prepared at start, and body the message's
// body. It returns the provider's status and reply body.
type OwnWorkProvider interface {
	Exchange(post *deliver.PreparedPost, body []byte) (status int, reply []byte, err error)
}

// NewOwnWork loads configText (one route, whose provider must be a
// rewrite.Poster) and writes each message's audit line to auditLog; now is
// the guardrails' clock.
func NewOwnWork(configText string, auditLog *slog.Logger, now func() time.Time) (*OwnWork, error) {
	cfg, err := config.Load("ownwork.toml", []byte(configText), config.LoadOptions{})
	if err != nil {
		return nil, err
	}
	if len(cfg.Routes) != 1 {
		return nil, fmt.Errorf("own work: %d routes, want 1", len(cfg.Routes))
	}
	route := cfg.Routes[0]
	poster, ok := route.Provider.(rewrite.Poster)
	if !ok {
		return nil, fmt.Errorf("own work: route %q: provider %s is not sent prepared", route.Name, route.ProviderName)
	}
	post, ok := deliver.PreparePost(poster, "postern/bench")
	if !ok {
		return nil, fmt.Errorf("own work: route %q: the request cannot be prepared", route.Name)
	}
	return &OwnWork{cfg: cfg, route: route, guards: guard.New(&cfg.Guards, now),
		metrics: metrics.New(metrics.BuildInfo{}), audit: auditLog,
		client: netip.MustParseAddr("127.0.0.1"), post: post,
		header:   http.Header{"Content-Type": {"application/json"}},
		attempts: []audit.Attempt{{Route: route.Name, Provider: route.ProviderName, Outcome: "delivered"}},
	}, nil
}

// PostTarget is the route's endpoint and the headers every request to it
// carries (rewrite.Poster's PostTarget).
func (w *OwnWork) PostTarget() (*url.URL, http.Header, error) {
	return w.route.Provider.(rewrite.Poster).PostTarget()
}

// errRefused is a message the own work would not send; its text says
// which step refused it.
var errRefused = errors.New("refused")

// Message does the own work for ISE's GET of host, path and query, with p
// making the provider round trip, and returns the legacy answer.
func (w *OwnWork) Message(ctx context.Context, host, path, query string, p OwnWorkProvider) (rewrite.Reply, error) {
	start := time.Now()
	cfg := w.cfg
	a := &audit.Record{Client: "127.0.0.1", Mode: "direct", Method: http.MethodGet}

	// admit
	if !cfg.ClientAllowed(w.client) || w.guards.AllowClient(ctx, a.Client).Limit != "" {
		return rewrite.Reply{}, fmt.Errorf("client: %w", errRefused)
	}
	// route
	route := cfg.Match(host, path)
	if route == nil {
		return rewrite.Reply{}, fmt.Errorf("no route: %w", errRefused)
	}
	a.Route, a.Provider = route.Name, route.ProviderName
	// parse
	in := rewrite.Inbound{Method: http.MethodGet, Host: config.HostOnly(host), Path: path, RawQuery: query}
	if !guard.CheckLegacyAuth(route, in) {
		return rewrite.Reply{}, fmt.Errorf("legacy credentials: %w", errRefused)
	}
	msg, err := route.Dialect.Parse(in)
	if err != nil {
		return rewrite.Reply{}, err
	}
	a.To, a.Chars = audit.MaskAll(msg.To), utf8.RuneCountInString(msg.Text)
	a.Segments = rewrite.CountSegments(msg.Text).Count
	if len(msg.To) > route.MaxRecipients || a.Segments > route.MaxSegments {
		return rewrite.Reply{}, fmt.Errorf("the route's limits: %w", errRefused)
	}
	// guard
	countries, reason := w.guards.CheckDestinations(msg.To)
	a.Country = countries
	if reason != "" {
		return rewrite.Reply{}, fmt.Errorf("destination %s: %w", reason, errRefused)
	}
	if limit := w.guards.AdmitMessage(ctx, msg.To).Limit; limit != "" {
		return rewrite.Reply{}, fmt.Errorf("rate limit %s: %w", limit, errRefused)
	}
	// build (deliver derives a client message id when ISE gave none): a
	// Poster's body, written after the head prepared at start
	msg.Options.ClientMessageID = "p7Kq2mXw9RtY4vBn6JcL0sDf3Ha"
	reqBody, err := route.Provider.(rewrite.Poster).PostBody(msg)
	if err != nil {
		return rewrite.Reply{}, err
	}
	status, body, err := p.Exchange(w.post, reqBody)
	if err != nil {
		return rewrite.Reply{}, err
	}
	// read the reply
	res := route.Provider.Read(msg, rewrite.Response{Status: status, Header: w.header, Body: body})
	// answer and audit
	a.TLS, a.Leaf, a.Attempts = "TLS 1.3", "3f1d2a9c0b7e4f6a8d5c1b2e9f0a7d3c6b8e1f4a2d9c7b5e0f3a6d8c1b4e7f2a", w.attempts
	outcome, code, reason := deliver.Summarize(res)
	for _, rc := range res.Recipients {
		if rc.ID != "" {
			a.IDs = append(a.IDs, rc.ID)
		}
	}
	rep := route.Dialect.Reply(res)
	a.Outcome, a.Status, a.Code, a.Reason = outcome, rep.Status, code, cfg.Redact(reason)
	a.Latency = time.Since(start)
	w.metrics.Record(a)
	audit.Write(ctx, w.audit, a)
	return rep, nil
}
