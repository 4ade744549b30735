package deliver

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/rewrite"
)

// Retry bounds. A retry happens only when the provider certainly did not
// receive the message; these only decide how often and how soon.
const (
	// retryBase is the first backoff step; each further step doubles it.
	retryBase = 200 * time.Millisecond
	// retryCap bounds one backoff step.
	retryCap = 2 * time.Second
	// retryMinBudget is the time that must be left of the request's
	// deadline after a wait: a retry with no time to finish would only turn
	// a clear "not sent" into an unclear timeout.
	retryMinBudget = 500 * time.Millisecond
)

// notSent marks a recipient's failure as one the provider certainly did not
// process. It wraps rewrite.Error.Cause, so the audit reason reads as
// before. status is 0 when nothing was written to the provider (dial
// error, TLS handshake failure), else the provider's 429/503 reply with its
// raw Retry-After header.
type notSent struct {
	status     int
	retryAfter string
	err        error
}

func (n *notSent) Error() string { return n.err.Error() }
func (n *notSent) Unwrap() error { return n.err }

// markNotWritten tags a transport failure that happened before anything was
// written. TLS verification failures are not tagged: a bad certificate does
// not get better by asking again.
func markNotWritten(ctx context.Context, e *rewrite.Error, wrote, verifyFailed bool) *rewrite.Error {
	if wrote || verifyFailed || ctx.Err() != nil || e.Outcome != rewrite.Refused {
		return e
	}
	e.Cause = &notSent{err: e.Cause}
	return e
}

// markThrottled tags the recipients of a 429 or 503 reply that the provider
// refused outright (rewrite says Failover: the provider itself answered and
// did not take the message). Whether such a reply may be retried is the
// provider's own answer (rewrite.Provider.RetryableReply), asked later.
func markThrottled(status int, header http.Header, res rewrite.Result) rewrite.Result {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable {
		return res
	}
	ra := header.Get("Retry-After")
	for i, rc := range res.Recipients {
		if rc.Err == nil || !rc.Err.Failover || rc.Err.Outcome != rewrite.Refused {
			continue
		}
		e := *rc.Err // recipients may share one *Error
		e.Cause = &notSent{status: status, retryAfter: ra, err: e.Cause}
		res.Recipients[i].Err = &e
	}
	return res
}

// retryableReply asks the route's provider whether a 429 or 503 reply
// means "not processed", so that sending again cannot double the message.
// The sandbox (nil) never gets such a reply.
func retryableReply(p rewrite.Provider, status int, hasRetryAfter bool) bool {
	return p != nil && p.RetryableReply(status, hasRetryAfter)
}

// retryPolicy decides whether and when to repeat an attempt. Its clock,
// randomness and sleep are injectable so tests never wait.
type retryPolicy struct {
	max    int
	jitter func() float64 // uniform in [0, 1)
	sleep  func(ctx context.Context, d time.Duration) error
	now    func() time.Time
}

func newRetryPolicy(max int, opts Options) retryPolicy {
	p := retryPolicy{max: max, jitter: opts.RetryJitter, sleep: opts.RetrySleep, now: time.Now}
	if p.jitter == nil {
		p.jitter = rand.Float64
	}
	if p.sleep == nil {
		p.sleep = sleepCtx
	}
	return p
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is the n-th (1-based) wait: exponential from retryBase up to
// retryCap, with "equal jitter" (half fixed, half random) so that many
// messages failing together do not return together.
func (p retryPolicy) backoff(n int) time.Duration {
	step := min(retryCap, retryBase<<(n-1))
	return step/2 + time.Duration(p.jitter()*float64(step/2))
}

// plan returns the recipients of res that may be sent again to provider
// and how long to wait first, or ok false. n is the retry number (1-based).
func (p retryPolicy) plan(ctx context.Context, provider rewrite.Provider, res rewrite.Result, n int) (to []string, wait time.Duration, why string, ok bool) {
	if n > p.max {
		return nil, 0, "", false
	}
	for _, rc := range res.Recipients {
		// Checked before ns is declared: errors.As takes its address,
		// which would put it on the heap for every recipient, accepted
		// ones included.
		if rc.Err == nil || rc.Err.Outcome != rewrite.Refused {
			continue
		}
		var ns *notSent
		if !errors.As(rc.Err.Cause, &ns) {
			continue
		}
		w, reason, retry := p.waitFor(ns, provider, n)
		if !retry {
			continue
		}
		to = append(to, rc.To)
		if w > wait {
			wait, why = w, reason
		}
	}
	// The context is asked only now: a message with nothing to retry
	// (the usual one) needs no reading of the clock.
	if len(to) == 0 || ctx.Err() != nil {
		return nil, 0, "", false
	}
	if deadline, has := ctx.Deadline(); has && deadline.Sub(p.now()) < wait+retryMinBudget {
		return nil, 0, "", false
	}
	return slices.Compact(to), wait, why, true
}

func (p retryPolicy) waitFor(ns *notSent, provider rewrite.Provider, n int) (time.Duration, string, bool) {
	if ns.status == 0 {
		return p.backoff(n), "not sent", true
	}
	ra, hasRA := parseRetryAfter(ns.retryAfter, p.now())
	if !retryableReply(provider, ns.status, hasRA) {
		return 0, "", false
	}
	// Retry-After is the provider's own answer; a little jitter on top
	// keeps a burst from returning in lockstep.
	return ra + time.Duration(p.jitter()*float64(retryBase)), "HTTP " + strconv.Itoa(ns.status) + " Retry-After", true
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 10.2.3).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// attempt is one send through one route's provider, repeated while the
// retry policy allows, each request recorded. Only the recipients that
// certainly did not reach the provider are sent again.
func (d *Deliverer) attempt(ctx context.Context, dl *Delivery, route *config.Route, m rewrite.Message) rewrite.Result {
	res := d.send(ctx, dl, route, m)
	for n := 1; ; n++ {
		to, wait, why, ok := d.retry.plan(ctx, route.Provider, res, n)
		if !ok {
			return res
		}
		last := &dl.Attempts[len(dl.Attempts)-1]
		last.Retry, last.RetryInMS = why, wait.Milliseconds()
		if d.retry.sleep(ctx, wait) != nil {
			return res
		}
		again := m
		again.To = to
		mergeRecipients(&res, d.send(ctx, dl, route, again))
	}
}

// send is exactly one request (or one per batch) to route's provider.
func (d *Deliverer) send(ctx context.Context, dl *Delivery, route *config.Route, m rewrite.Message) rewrite.Result {
	res, info := d.senders[route].Send(ctx, m)
	if info.TLSVersion != "" {
		dl.Info = info
	}
	outcome, code, _ := Summarize(res)
	dl.Attempts = append(dl.Attempts, audit.Attempt{Route: route.Name, Provider: route.ProviderName, Outcome: outcome, Code: code})
	return res
}

// mergeRecipients replaces into's recipients by their outcome in res.
func mergeRecipients(into *rewrite.Result, res rewrite.Result) {
	for i, rc := range into.Recipients {
		if j := slices.IndexFunc(res.Recipients, func(r rewrite.Recipient) bool { return r.To == rc.To }); j >= 0 {
			into.Recipients[i] = res.Recipients[j]
		}
	}
}
