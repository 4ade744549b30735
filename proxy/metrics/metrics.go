// Package metrics holds postern's Prometheus metrics: what the server
// counts (messages, refusals, rate-limit hits, reloads, requests in flight)
// and observes (upstream latency, certificate expiry), with the Go
// runtime's and the process's, served in the Prometheus text format by
// postern's own small exposition (expose.go) rather than client_golang,
// whose packages' start-up cost the daemon about 3 MiB of resident memory.
package metrics

import (
	"sync/atomic"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/trust"
)

// Refusal reasons: the fixed, low-cardinality values of the reason label of
// postern_refusals_total. A refusal is a request postern itself turned down
// before anything was sent.
const (
	RefusalClientNotAllowed = "client_not_allowed"
	RefusalNoRoute          = "no_route"
	RefusalConnect          = "connect"
	RefusalBadRequest       = "bad_request"
	RefusalRateLimited      = "rate_limited"
	RefusalAuthFailed       = "auth_failed"         // proxy or legacy credentials
	RefusalDestination      = "destination_blocked" // country, premium-rate or unknown number
	RefusalBusy             = "upstream_busy"       // max_concurrent_upstream full
	RefusalStore            = "store_unavailable"   // [cluster] store down and on_store_error = "refuse"
)

// refusalReasons lists every refusal label value, so all series exist at 0.
var refusalReasons = []string{RefusalClientNotAllowed, RefusalNoRoute, RefusalConnect, RefusalBadRequest,
	RefusalRateLimited, RefusalAuthFailed, RefusalDestination, RefusalBusy, RefusalStore}

// Rate limits, the values of postern_rate_limit_hits_total's limit label.
const (
	LimitPerClient = "per_client"
	LimitPerNumber = "per_number"
	LimitDailyMax  = "daily_max"
)

// BuildInfo identifies the running binary in postern_build_info.
type BuildInfo struct {
	Version, Commit, GoVersion string
}

// messageKey is postern_messages_total's label values.
type messageKey struct{ route, provider, outcome string }

// routeKey is postern_upstream_request_duration_seconds's label values.
type routeKey struct{ route, provider string }

// Metrics holds one server's metrics, so that several servers in one
// process (tests) never share counters. Every update is an atomic
// operation on a series found without a lock or an allocation.
type Metrics struct {
	build BuildInfo
	start float64 // process_start_time_seconds, read once (see process.go)
	done  func()  // finished, what Started returns

	messages        *series[messageKey, atomic.Uint64] // route, provider, outcome
	upstreamLatency *series[routeKey, histogram]       // route, provider
	refusals        *series[string, atomic.Uint64]     // reason
	rateLimitHits   *series[string, atomic.Uint64]     // limit
	inFlight        atomic.Int64
	certExpiry      atomic.Pointer[trust.ExpiryTracker] // host, read at scrape time
	reloadsOK       atomic.Uint64
	reloadsFailed   atomic.Uint64
	lastReloadOK    atomic.Bool
	lastReloadTime  floatValue

	// [cluster] store metrics: absent until a store is used (store.go).
	storeUsed   atomic.Bool
	storeUp     atomic.Bool
	storeErrors atomic.Uint64

	runtime runtimeMetrics // the Go runtime's (runtime.go)
}

// New returns a server's metrics, every fixed series at 0.
func New(bi BuildInfo) *Metrics {
	m := &Metrics{
		build:           bi,
		start:           processStartTime(),
		messages:        newSeries[messageKey](func() *atomic.Uint64 { return new(atomic.Uint64) }),
		upstreamLatency: newSeries[routeKey](func() *histogram { return new(histogram) }),
		refusals:        newSeries[string](func() *atomic.Uint64 { return new(atomic.Uint64) }),
		rateLimitHits:   newSeries[string](func() *atomic.Uint64 { return new(atomic.Uint64) }),
		runtime:         newRuntimeMetrics(),
	}
	m.done = m.finished // made once: a method value made per request is an allocation
	m.lastReloadOK.Store(true)
	m.lastReloadTime.set(unixNow())
	for _, r := range refusalReasons {
		m.refusals.get(r)
	}
	for _, l := range []string{LimitPerClient, LimitPerNumber, LimitDailyMax} {
		m.rateLimitHits.get(l)
	}
	return m
}

// unixNow is the current time as a Unix time in seconds, as client_golang's
// Gauge.SetToCurrentTime has it.
func unixNow() float64 { return float64(time.Now().UnixNano()) / 1e9 }

// Started counts one request into the in-flight gauge; call the returned
// func when it is answered.
func (m *Metrics) Started() (done func()) {
	m.inFlight.Add(1)
	return m.done
}

func (m *Metrics) finished() { m.inFlight.Add(-1) }

// Record counts one audit record: a message that matched a route, and/or a
// refusal by postern itself.
func (m *Metrics) Record(a *audit.Record) {
	if a.Route != "" {
		m.messages.get(messageKey{a.Route, a.Provider, a.Outcome}).Add(1)
	}
	reason := a.Refusal
	// An SMTP line's status is an SMTP reply code, and the SMTP front end
	// labels each of its own refusals.
	if reason == "" && a.Route != "" && a.Mode != "smtp" && a.Status >= 400 && a.Status < 500 {
		reason = RefusalBadRequest // the legacy request itself was unacceptable
	}
	if reason != "" {
		m.refusals.get(reason).Add(1)
	}
}

// RateLimitHit counts a request refused by one of the [limits] (LimitPer*).
func (m *Metrics) RateLimitHit(limit string) {
	m.rateLimitHits.get(limit).Add(1)
}

// Upstream returns what a sender reports one provider exchange to. The
// series exists (at 0) from this call on.
func (m *Metrics) Upstream(route, provider string) Observer {
	return Observer{latency: m.upstreamLatency.get(routeKey{route, provider})}
}

// Reloaded records the result of a configuration reload.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloadsOK.Add(1)
		m.lastReloadOK.Store(true)
		m.lastReloadTime.set(unixNow())
		return
	}
	m.reloadsFailed.Add(1)
	m.lastReloadOK.Store(false)
}

// Observer is a sender's view of the metrics: the latency of each provider
// exchange. The zero Observer observes nothing.
type Observer struct {
	latency *histogram
}

// Observe records one provider exchange that took d.
func (o Observer) Observe(d time.Duration) {
	if o.latency != nil {
		o.latency.observe(d.Seconds())
	}
}

// TrackExpiry exports the leaf expiry t records (trust's transport
// verifies every provider connection into it): the one record of upstream
// certificate expiry, read at scrape time. A later call replaces t.
func (m *Metrics) TrackExpiry(t *trust.ExpiryTracker) { m.certExpiry.Store(t) }
