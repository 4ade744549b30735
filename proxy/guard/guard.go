// Package guard holds postern's guardrails: who may send (proxy and legacy
// credentials) and how much (per_client, per_number, daily_max), where to
// (destination countries, premium-rate numbers).
package guard

import (
	"context"
	"slices"
	"time"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/proxy/store"
	"github.com/postern/postern/rewrite"
)

// State is the mutable side of the guardrails for one runtime: the rate
// limiters.
type State struct {
	g         *config.Guards
	now       func() time.Time
	perClient *keyedLimiter
	perNumber *keyedLimiter
	daily     *dailyCap

	store  *store.Store  // [cluster]; nil: this replica's counters (shared.go)
	hasher *store.Hasher // names clients and numbers in the store
}

// New returns the guardrail state for g; now is the clock rate limits run
// on (nil means time.Now).
func New(g *config.Guards, now func() time.Time) *State {
	if now == nil {
		now = time.Now
	}
	return &State{
		g:         g,
		now:       now,
		perClient: newKeyedLimiter(g.PerClient, defaultMaxLimiterKeys),
		perNumber: newKeyedLimiter(g.PerNumber, defaultMaxLimiterKeys),
		daily:     &dailyCap{max: g.DailyMax},
	}
}

// Inherit keeps prev's counters where the settings behind them did not
// change, so a reload does not reset budgets.
func (gs *State) Inherit(prev *State) {
	if prev.g.PerClient == gs.g.PerClient {
		gs.perClient = prev.perClient
	}
	if prev.g.PerNumber == gs.g.PerNumber {
		gs.perNumber = prev.perNumber
	}
	if prev.g.DailyMax == gs.g.DailyMax {
		gs.daily = prev.daily
	}
}

// AllowClient takes one request from client's per_client budget (in the
// shared store with [cluster]).
func (gs *State) AllowClient(ctx context.Context, client string) Verdict {
	now := gs.now()
	if v, ok := gs.shared(ctx, now, true, []string{client}); ok {
		return v
	}
	v := Verdict{Store: gs.localLabel()}
	if !gs.perClient.allowAll(now, []string{client}) {
		v.Limit = metrics.LimitPerClient
	}
	return v
}

// CheckDestinations looks every recipient up in libphonenumber's metadata.
// It returns each recipient's country ("" when unknown) and a refusal reason,
// "" when all may be sent to. Premium-rate numbers are always refused: they
// are what SMS pumping fraud sends to. With allow_countries set, a number
// must also belong to a listed country and be of a known type.
func (gs *State) CheckDestinations(to []string) (countries []string, reason string) {
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

// AdmitMessage counts a message against daily_max and per_number, all or
// nothing (in the shared store with [cluster]); the verdict's Limit is the
// limit that refused it (metrics.LimitDailyMax, metrics.LimitPerNumber).
func (gs *State) AdmitMessage(ctx context.Context, to []string) Verdict {
	now := gs.now()
	if v, ok := gs.shared(ctx, now, false, to); ok {
		return v
	}
	return gs.localAll(now, "", false, to)
}
