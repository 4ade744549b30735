// Package metrics holds postern's Prometheus collectors: what the server
// counts (messages, refusals, rate-limit hits, reloads, requests in flight)
// and observes (upstream latency, certificate expiry).
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// Metrics holds one server's Prometheus collectors in its own registry, so
// that several servers in one process (tests) never share counters.
type Metrics struct {
	reg *prometheus.Registry

	messages        *prometheus.CounterVec   // route, provider, outcome
	upstreamLatency *prometheus.HistogramVec // route, provider
	refusals        *prometheus.CounterVec   // reason
	rateLimitHits   *prometheus.CounterVec   // route
	inFlight        prometheus.Gauge
	certExpiry      *expiryCollector       // host
	reloads         *prometheus.CounterVec // result
	lastReloadOK    prometheus.Gauge
	lastReloadTime  prometheus.Gauge
	store           storeCollectors // [cluster], registered on first use (store.go)
}

// New registers postern's metrics, the Go runtime's and the process's
// in a fresh registry.
func New(bi BuildInfo) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postern_messages_total",
			Help: "Messages that matched a route, by route, provider and outcome (delivered, refused, unknown, partial; sandbox: taken by the sandbox provider, not sent).",
		}, []string{"route", "provider", "outcome"}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "postern_upstream_request_duration_seconds",
			Help:    "Time from sending a provider request to having read its reply (or failing), by route and provider.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "provider"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postern_refusals_total",
			Help: "Requests postern refused itself, by reason (client_not_allowed, no_route, connect, bad_request, rate_limited, auth_failed, destination_blocked, upstream_busy, store_unavailable).",
		}, []string{"reason"}),
		rateLimitHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postern_rate_limit_hits_total",
			Help: "Requests refused by a rate limit, by limit (per_client, per_number, daily_max).",
		}, []string{"limit"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "postern_in_flight_requests",
			Help: "Requests being handled right now.",
		}),
		certExpiry: &expiryCollector{desc: prometheus.NewDesc("postern_upstream_certificate_expiry_timestamp_seconds",
			"NotAfter of the leaf certificate last verified for each provider host, as a Unix time.", []string{"host"}, nil)},
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "postern_config_reloads_total",
			Help: "Configuration reloads by result (success, failure).",
		}, []string{"result"}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "postern_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded (or none was tried), 0 if it failed.",
		}),
		lastReloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "postern_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration now served was loaded, as a Unix time.",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "postern_build_info",
		Help:        "Always 1; the labels identify the running binary.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "goversion": bi.GoVersion},
	})
	build.Set(1)
	m.lastReloadOK.Set(1)
	m.lastReloadTime.SetToCurrentTime()
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	for _, r := range refusalReasons {
		m.refusals.WithLabelValues(r)
	}
	for _, l := range []string{LimitPerClient, LimitPerNumber, LimitDailyMax} {
		m.rateLimitHits.WithLabelValues(l)
	}
	m.reg.MustRegister(m.messages, m.upstreamLatency, m.refusals, m.rateLimitHits, m.inFlight,
		m.certExpiry, m.reloads, m.lastReloadOK, m.lastReloadTime, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Started counts one request into the in-flight gauge; call the returned
// func when it is answered.
func (m *Metrics) Started() (done func()) {
	m.inFlight.Inc()
	return m.inFlight.Dec
}

// Record counts one audit record: a message that matched a route, and/or a
// refusal by postern itself.
func (m *Metrics) Record(a *audit.Record) {
	if a.Route != "" {
		m.messages.WithLabelValues(a.Route, a.Provider, a.Outcome).Inc()
	}
	reason := a.Refusal
	// An SMTP line's status is an SMTP reply code, and the SMTP front end
	// labels each of its own refusals.
	if reason == "" && a.Route != "" && a.Mode != "smtp" && a.Status >= 400 && a.Status < 500 {
		reason = RefusalBadRequest // the legacy request itself was unacceptable
	}
	if reason != "" {
		m.refusals.WithLabelValues(reason).Inc()
	}
}

// RateLimitHit counts a request refused by one of the [limits] (LimitPer*).
func (m *Metrics) RateLimitHit(limit string) {
	m.rateLimitHits.WithLabelValues(limit).Inc()
}

// Upstream returns what a sender reports one provider exchange to.
func (m *Metrics) Upstream(route, provider string) Observer {
	return Observer{latency: m.upstreamLatency.WithLabelValues(route, provider)}
}

// Reloaded records the result of a configuration reload.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReloadOK.Set(1)
		m.lastReloadTime.SetToCurrentTime()
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.lastReloadOK.Set(0)
}

// Observer is a sender's view of the metrics: the latency of each provider
// exchange. The zero Observer observes nothing.
type Observer struct {
	latency prometheus.Observer
}

// Observe records one provider exchange that took d.
func (o Observer) Observe(d time.Duration) {
	if o.latency != nil {
		o.latency.Observe(d.Seconds())
	}
}

// TrackExpiry exports the leaf expiry t records (trust's transport
// verifies every provider connection into it): the one record of upstream
// certificate expiry, read at scrape time. A later call replaces t.
func (m *Metrics) TrackExpiry(t *trust.ExpiryTracker) { m.certExpiry.tracker.Store(t) }

// expiryCollector is postern_upstream_certificate_expiry_timestamp_seconds,
// one series per provider host whose leaf the tracker has verified.
type expiryCollector struct {
	desc    *prometheus.Desc
	tracker atomic.Pointer[trust.ExpiryTracker]
}

func (c *expiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *expiryCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.tracker.Load()
	if t == nil {
		return
	}
	for _, l := range t.Leaves() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(l.NotAfter.Unix()), l.Host)
	}
}
