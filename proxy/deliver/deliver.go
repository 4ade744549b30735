// Package deliver sends parsed messages to providers: it joins identical
// messages in flight (single-flight), waits for an upstream slot, runs the
// HTTP exchange through an injected transport, retries what certainly was
// not sent, and fails over to a route's fallback. It returns what happened
// as a Delivery; it writes no audit line and answers no client.
package deliver

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/postern/postern/internal/macpool"
	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/proxy/store"
	"github.com/postern/postern/rewrite"
)

// Options are the parts a Deliverer is given rather than builds.
type Options struct {
	// Transport carries the provider requests that Client does not:
	// postern passes its verified trust.NewTransport (HTTP/2 when offered)
	// for routes with upstream_http2; tests pass their own RoundTripper.
	Transport http.RoundTripper
	// Client carries the requests of every other route to an https
	// endpoint: postern passes its FastClient (HTTP/1.1 keep-alive). nil
	// sends every request through Transport.
	Client Client
	// Log receives the sandbox's "NOT SENT" notices; nil discards them.
	Log *slog.Logger
	// Metrics observes each provider exchange; nil observes nothing.
	Metrics *metrics.Metrics
	// UserAgent is sent with every provider request; "" sends "postern".
	UserAgent string
	// RetryJitter returns a uniform random number in [0, 1) for retry
	// backoff; nil uses math/rand. RetrySleep waits between retries; nil
	// sleeps for real.
	RetryJitter func() float64
	RetrySleep  func(ctx context.Context, d time.Duration) error
	// DryRun makes each message one attempt at its route's provider: no
	// retry and no failover, for a Transport that records what would be
	// sent and answers nothing (`postern translate`).
	DryRun bool
	// Joins holds the messages in flight; a server keeps one across
	// reloads, so a repeat is joined whatever config it arrives under.
	// nil gives the Deliverer its own.
	Joins *Joins
}

// Deliverer sends the messages of one configuration. A reload makes a new
// one (see Inherit).
type Deliverer struct {
	senders map[*config.Route]sender
	retry   retryPolicy
	macs    *macpool.Pool // HMACs (the config's id key) for message keys and client message ids
	slots   *slots
	joins   *Joins
	dryRun  bool

	store    *store.Store  // [cluster]; nil: this replica alone (shared.go)
	claimTTL time.Duration // how long a claim in the store holds
}

// New builds the senders for cfg's routes over opts.Transport.
func New(cfg *config.Config, opts Options) *Deliverer {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Joins == nil {
		opts.Joins = &Joins{}
	}
	client := newNetClient(opts.Transport)
	d := &Deliverer{senders: map[*config.Route]sender{}, retry: newRetryPolicy(cfg.Retries, opts), macs: macpool.New(cfg.IDKey()),
		slots: newSlots(cfg.Guards.MaxConcurrentUpstream, cfg.Guards.UpstreamQueueWait), joins: opts.Joins, dryRun: opts.DryRun}
	if opts.DryRun {
		d.retry.max = 0
	}
	for _, r := range cfg.Routes {
		if r.Provider == nil {
			d.senders[r] = &sandboxSender{route: r.Name, log: opts.Log}
			continue
		}
		var observe metrics.Observer
		if opts.Metrics != nil {
			observe = opts.Metrics.Upstream(r.Name, r.ProviderName)
		}
		hs := &httpSender{provider: r.Provider, client: client, observe: observe,
			userAgent: cmp.Or(opts.UserAgent, "postern")}
		if !r.UpstreamHTTP2 {
			hs.fast = opts.Client
			hs.preparePosts()
		}
		d.senders[r] = hs
	}
	return d
}

// Inherit keeps prev's upstream slots when max_concurrent_upstream did not
// change, so a reload does not free the slots of messages still in flight.
func (d *Deliverer) Inherit(prev *Deliverer) {
	if cap(prev.slots.ch) == cap(d.slots.ch) {
		d.slots.ch = prev.slots.ch
	}
}

// Delivery is everything that happened to one message: the final outcome
// per recipient, the TLS facts of the last provider reached, every attempt.
type Delivery struct {
	Result   rewrite.Result
	Info     Info
	Attempts []audit.Attempt
	// ClientMsgID is the client message id passed to the provider: ISE's
	// climsgid, else one derived from the message (see keyFor).
	ClientMsgID string
	// Joined: an identical message was in flight; this one got its outcome
	// and sent nothing itself.
	Joined bool
	// Busy: no upstream slot came free within upstream_queue_wait, so
	// nothing was sent.
	Busy bool
	// Store says whose duplicate suppression applied, with [cluster]:
	// store.Redis (shared) or store.Local (the store was unavailable);
	// "" without [cluster].
	Store string
	// StoreDown: the shared store was unavailable and on_store_error is
	// "refuse", so nothing was sent.
	StoreDown bool
}

// Deliver sends msg through route unless an identical message is already
// in flight, in which case it waits for that one's outcome and reports it
// as its own (Joined). It passes the derived client message id when ISE
// gave none. With a store (UseStore) it claims the message there first.
func (d *Deliverer) Deliver(ctx context.Context, route *config.Route, msg rewrite.Message) Delivery {
	return d.DeliverClaimed(ctx, route, msg, d.Key(route, msg), store.Claimed{})
}

// Key is msg's key through route, which names it among identical
// messages here and in the store.
func (d *Deliverer) Key(route *config.Route, msg rewrite.Message) Key {
	return keyFor(d.macs, route.Name, msg)
}

// ClaimAsk is what to ask the store for k's claim in the same step as the
// limits (guard.State.AdmitAll): its id and TTL; "" without a store.
func (d *Deliverer) ClaimAsk(k Key) (id string, ttl time.Duration) {
	if d.store == nil {
		return "", 0
	}
	return hexKey(k), d.claimTTL
}

// DeliverClaimed is Deliver for a message whose key is k (Key) and whose
// claim was asked of the store already, with its limits, in one round
// trip (c; a zero c asks for the claim here, as Deliver does).
func (d *Deliverer) DeliverClaimed(ctx context.Context, route *config.Route, msg rewrite.Message, k Key, c store.Claimed) Delivery {
	if msg.Options.ClientMessageID == "" {
		msg.Options.ClientMessageID = k.clientMessageID()
	}
	id := msg.Options.ClientMessageID
	f, done, leader := d.joins.join(k)
	if !leader {
		defer d.joins.leave()
		d.giveUp(c)
		select {
		case <-done:
			// The leader's attempts are its own; the joiner made none.
			dl := f.d
			dl.Attempts, dl.Joined = nil, true
			return dl
		case <-ctx.Done():
			// Unreachable in practice: the leader started first and has
			// the same request_timeout.
			return Delivery{Result: failAll(msg, joinTimedOut()), ClientMsgID: id, Joined: true}
		}
	}
	defer d.joins.finish(k, f)
	f.d.ClientMsgID = id
	if d.store != nil {
		d.deliverShared(ctx, route, msg, k, c, &f.d)
		return f.d
	}
	release, ok := d.slots.acquire(ctx)
	if !ok {
		f.d.Busy = true
		return f.d
	}
	d.failover(ctx, route, msg, &f.d)
	release()
	return f.d
}

// failover sends m through route's provider and then, for the recipients
// the primary certainly did not accept for a provider-side reason
// (rewrite.Error.Failover), through route.Fallback's provider — once, and
// only while the request's deadline allows. Recipients whose outcome is
// unknown never go to the fallback: a guest must not get the same password
// from two providers. The fallback's own fallback is not followed.
//
// Retries (retry.go) wrap each route's attempt; failover stays one hop on
// top of them.
func (d *Deliverer) failover(ctx context.Context, route *config.Route, m rewrite.Message, dl *Delivery) {
	dl.Result = d.attempt(ctx, dl, route, m)
	fb := route.Fallback
	if fb == nil || ctx.Err() != nil || d.dryRun {
		return
	}
	var retry []string
	for _, rc := range dl.Result.Recipients {
		if rc.Err != nil && rc.Err.Failover && rc.Err.Outcome == rewrite.Refused {
			retry = append(retry, rc.To)
		}
	}
	if len(retry) == 0 {
		return
	}
	second := m
	second.To = retry
	mergeRecipients(&dl.Result, d.attempt(ctx, dl, fb, second))
}
