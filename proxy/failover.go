package proxy

import (
	"context"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/rewrite"
)

// delivery is everything that happened to one message: the final outcome
// per recipient, the TLS facts of the last provider reached, every attempt.
type delivery struct {
	Result   rewrite.Result
	Info     sendInfo
	Attempts []audit.Attempt
}

// deliver sends m through route's provider and then, for the recipients the
// primary certainly did not accept for a provider-side reason
// (rewrite.Error.Failover), through route.Fallback's provider — once, and
// only while the request's deadline allows. Recipients whose outcome is
// unknown never go to the fallback: a guest must not get the same password
// from two providers. The fallback's own fallback is not followed.
//
// Retries (retry.go) wrap each route's attempt; failover stays one hop on
// top of them.
func (rt *runtime) deliver(ctx context.Context, route *config.Route, m rewrite.Message) delivery {
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
	mergeRecipients(&d.Result, d.attempt(ctx, rt, fb, second))
	return d
}
