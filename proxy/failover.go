package proxy

import (
	"context"
	"slices"

	"github.com/postern/postern/rewrite"
)

// attemptRecord is one provider attempt, for the audit line's "attempts".
type attemptRecord struct {
	Route    string `json:"route"`
	Provider string `json:"provider"`
	Outcome  string `json:"outcome"`        // delivered, refused, unknown, partial
	Code     string `json:"code,omitempty"` // legacy code of the first failure
}

// delivery is everything that happened to one message: the final outcome
// per recipient, the TLS facts of the last provider reached, every attempt.
type delivery struct {
	Result   rewrite.Result
	Info     sendInfo
	Attempts []attemptRecord
}

// deliver sends m through route's provider and then, for the recipients the
// primary certainly did not accept for a provider-side reason
// (rewrite.Error.Failover), through route.Fallback's provider — once, and
// only while the request's deadline allows. Recipients whose outcome is
// unknown never go to the fallback: a guest must not get the same password
// from two providers. The fallback's own fallback is not followed.
//
// This is the seam for retries (issue 7): a retry policy wraps the single
// send in attempt, and failover stays one hop on top of it.
func (rt *runtime) deliver(ctx context.Context, route *Route, m rewrite.Message) delivery {
	var d delivery
	d.Result = d.attempt(ctx, rt, route, m)
	fb := route.Fallback
	if fb == nil || ctx.Err() != nil {
		return d
	}
	var retry []string
	for _, rc := range d.Result.Recipients {
		if rc.Err != nil && rc.Err.Failover && rc.Err.Outcome == rewrite.Refused {
			retry = append(retry, rc.To)
		}
	}
	if len(retry) == 0 {
		return d
	}
	second := m
	second.To = retry
	res := d.attempt(ctx, rt, fb, second)
	for i, rc := range d.Result.Recipients {
		if j := slices.IndexFunc(res.Recipients, func(r rewrite.Recipient) bool { return r.To == rc.To }); j >= 0 {
			d.Result.Recipients[i] = res.Recipients[j]
		}
	}
	return d
}

// attempt is one send through one route's provider, recorded.
func (d *delivery) attempt(ctx context.Context, rt *runtime, route *Route, m rewrite.Message) rewrite.Result {
	res, info := rt.senders[route].Send(ctx, m)
	if info.TLSVersion != "" {
		d.Info = info
	}
	outcome, code, _ := summarize(res)
	d.Attempts = append(d.Attempts, attemptRecord{Route: route.Name, Provider: route.ProviderName, Outcome: outcome, Code: code})
	return res
}
