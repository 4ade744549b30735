package proxy

import (
	"context"
	"slices"
	"time"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/rewrite"
)

// guardState is the mutable side of the guardrails for one runtime: the rate
// limiters and the upstream semaphore.
type guardState struct {
	g         *config.Guards
	now       func() time.Time
	perClient *keyedLimiter
	perNumber *keyedLimiter
	daily     *dailyCap
	upstream  chan struct{}
}

func newGuardState(g *config.Guards, now func() time.Time) *guardState {
	if now == nil {
		now = time.Now
	}
	return &guardState{
		g:         g,
		now:       now,
		perClient: newKeyedLimiter(g.PerClient, DefaultMaxLimiterKeys),
		perNumber: newKeyedLimiter(g.PerNumber, DefaultMaxLimiterKeys),
		daily:     &dailyCap{max: g.DailyMax},
		upstream:  make(chan struct{}, g.MaxConcurrentUpstream),
	}
}

// inherit keeps prev's counters where the settings behind them did not
// change, so a reload neither resets budgets nor the upstream slots in use.
func (gs *guardState) inherit(prev *guardState) {
	if prev.g.PerClient == gs.g.PerClient {
		gs.perClient = prev.perClient
	}
	if prev.g.PerNumber == gs.g.PerNumber {
		gs.perNumber = prev.perNumber
	}
	if prev.g.DailyMax == gs.g.DailyMax {
		gs.daily = prev.daily
	}
	if prev.g.MaxConcurrentUpstream == gs.g.MaxConcurrentUpstream {
		gs.upstream = prev.upstream
	}
}

// allowClient takes one request from client's per_client budget.
func (gs *guardState) allowClient(client string) bool {
	return gs.perClient.allowAll(gs.now(), []string{client})
}

// checkDestinations looks every recipient up in libphonenumber's metadata.
// It returns each recipient's country ("" when unknown) and a refusal reason,
// "" when all may be sent to. Premium-rate numbers are always refused: they
// are what SMS pumping fraud sends to. With allow_countries set, a number
// must also belong to a listed country and be of a known type.
func (gs *guardState) checkDestinations(to []string) (countries []string, reason string) {
	countries = make([]string, len(to))
	for i, n := range to {
		info := rewrite.LookupNumber(n)
		countries[i] = info.Country
		switch {
		case reason != "":
		case info.Premium():
			reason = "premium-rate number refused"
		case len(gs.g.AllowCountries) == 0:
		case !info.Known():
			reason = "number of unknown country or type refused"
		case !slices.Contains(gs.g.AllowCountries, info.Country):
			reason = "country " + info.Country + " not in allow_countries"
		}
	}
	return countries, reason
}

// admitMessage counts a message against daily_max and per_number, all or
// nothing, and returns the limit that refused it (metrics.LimitDailyMax,
// metrics.LimitPerNumber) or "".
func (gs *guardState) admitMessage(to []string) string {
	now := gs.now()
	if !gs.daily.take(now, len(to)) {
		return metrics.LimitDailyMax
	}
	if !gs.perNumber.allowAll(now, to) {
		gs.daily.giveBack(now, len(to))
		return metrics.LimitPerNumber
	}
	return ""
}

// acquireUpstream waits up to upstream_queue_wait for one of
// max_concurrent_upstream slots. ok is false when none came free in time.
func (gs *guardState) acquireUpstream(ctx context.Context) (release func(), ok bool) {
	select {
	case gs.upstream <- struct{}{}:
		return func() { <-gs.upstream }, true
	default:
	}
	t := time.NewTimer(gs.g.UpstreamQueueWait)
	defer t.Stop()
	select {
	case gs.upstream <- struct{}{}:
		return func() { <-gs.upstream }, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}
