package metrics

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/trust"
)

// refMetrics is postern's metrics as they were built on client_golang
// v1.25 (until this package exposed them itself), kept verbatim for the
// tests only: expose_test.go drives it and Metrics with the same events and
// compares the two expositions line for line. Test files' imports do not
// enter postern's binary.
type refMetrics struct {
	reg *prometheus.Registry

	messages        *prometheus.CounterVec   // route, provider, outcome
	upstreamLatency *prometheus.HistogramVec // route, provider
	refusals        *prometheus.CounterVec   // reason
	rateLimitHits   *prometheus.CounterVec   // route
	inFlight        prometheus.Gauge
	certExpiry      *refExpiryCollector    // host
	reloads         *prometheus.CounterVec // result
	lastReloadOK    prometheus.Gauge
	lastReloadTime  prometheus.Gauge

	storeOnce   sync.Once
	storeUp     prometheus.Gauge
	storeErrors prometheus.Counter
}

func newRefMetrics(bi BuildInfo) *refMetrics {
	m := &refMetrics{
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
		certExpiry: &refExpiryCollector{desc: prometheus.NewDesc("postern_upstream_certificate_expiry_timestamp_seconds",
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

func (m *refMetrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *refMetrics) Started() (done func()) {
	m.inFlight.Inc()
	return m.inFlight.Dec
}

func (m *refMetrics) Record(a *audit.Record) {
	if a.Route != "" {
		m.messages.WithLabelValues(a.Route, a.Provider, a.Outcome).Inc()
	}
	reason := a.Refusal
	if reason == "" && a.Route != "" && a.Mode != "smtp" && a.Status >= 400 && a.Status < 500 {
		reason = RefusalBadRequest
	}
	if reason != "" {
		m.refusals.WithLabelValues(reason).Inc()
	}
}

func (m *refMetrics) RateLimitHit(limit string) { m.rateLimitHits.WithLabelValues(limit).Inc() }

func (m *refMetrics) Upstream(route, provider string) func(time.Duration) {
	o := m.upstreamLatency.WithLabelValues(route, provider)
	return func(d time.Duration) { o.Observe(d.Seconds()) }
}

func (m *refMetrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReloadOK.Set(1)
		m.lastReloadTime.SetToCurrentTime()
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.lastReloadOK.Set(0)
}

func (m *refMetrics) TrackExpiry(t *trust.ExpiryTracker) { m.certExpiry.tracker.Store(t) }

func (m *refMetrics) store() {
	m.storeOnce.Do(func() {
		m.storeUp = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "postern_store_up",
			Help: "1 while the [cluster] store answers and limits and duplicate suppression are shared; 0 while this replica falls back (on_store_error).",
		})
		m.storeErrors = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_store_errors_total",
			Help: "[cluster] store operations that failed (down, slower than store_timeout, or refused), health probes included.",
		})
		m.reg.MustRegister(m.storeUp, m.storeErrors)
	})
}

func (m *refMetrics) StoreUp(up bool) {
	m.store()
	v := 0.0
	if up {
		v = 1
	}
	m.storeUp.Set(v)
}

func (m *refMetrics) StoreError() { m.store(); m.storeErrors.Inc() }

type refExpiryCollector struct {
	desc    *prometheus.Desc
	tracker atomic.Pointer[trust.ExpiryTracker]
}

func (c *refExpiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *refExpiryCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.tracker.Load()
	if t == nil {
		return
	}
	for _, l := range t.Leaves() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(l.NotAfter.Unix()), l.Host)
	}
}
