package metrics

import (
	"cmp"
	"compress/gzip"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// The exposition: the Prometheus text format 0.0.4, written as
// client_golang's registry and promhttp.HandlerFor(reg, HandlerOpts{})
// write it — families sorted by name, label pairs by label name, series by
// label values, a family without series left out, the same float
// formatting and escaping — so a scrape reads the same bytes as before
// postern stopped linking client_golang (expose_test.go compares the two).

// Family types, as in "# TYPE".
const (
	typeCounter   = "counter"
	typeGauge     = "gauge"
	typeSummary   = "summary"
	typeHistogram = "histogram"
)

type label struct{ name, value string }

// family is one metric family of a scrape: a single series of value with
// labels, or what emit writes.
type family struct {
	name, help, typ string
	labels          []label // sorted by name
	value           float64
	emit            func(w *expo) // writes the samples; nil for one sample of value
}

// expo builds one exposition in memory.
type expo struct{ b []byte }

// write appends f, or nothing when it has no series.
func (w *expo) write(f *family) {
	start := len(w.b)
	w.b = append(w.b, "# HELP "...)
	w.b = append(w.b, f.name...)
	w.b = append(w.b, ' ')
	w.escape(f.help, false)
	w.b = append(w.b, "\n# TYPE "...)
	w.b = append(w.b, f.name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, f.typ...)
	w.b = append(w.b, '\n')
	header := len(w.b)
	if f.emit == nil {
		w.sample(f.name, "", f.labels, "", 0, f.value)
	} else {
		f.emit(w)
	}
	if len(w.b) == header {
		w.b = w.b[:start]
	}
}

// sample appends one line: name+suffix, labels, then extra (le, quantile)
// with its value as a float, then v.
func (w *expo) sample(name, suffix string, labels []label, extra string, extraValue, v float64) {
	w.b = append(w.b, name...)
	w.b = append(w.b, suffix...)
	sep := byte('{')
	for _, l := range labels {
		w.b = append(w.b, sep)
		w.b = append(w.b, l.name...)
		w.b = append(w.b, '=', '"')
		w.escape(l.value, true)
		w.b = append(w.b, '"')
		sep = ','
	}
	if extra != "" {
		w.b = append(w.b, sep)
		w.b = append(w.b, extra...)
		w.b = append(w.b, '=', '"')
		w.float(extraValue)
		w.b = append(w.b, '"')
		sep = ','
	}
	if sep == ',' {
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ' ')
	w.float(v)
	w.b = append(w.b, '\n')
}

// escape appends s with backslash and newline escaped, and the double
// quote too in a label value, as the text format requires.
func (w *expo) escape(s string, quote bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			w.b = append(w.b, '\\', '\\')
		case c == '\n':
			w.b = append(w.b, '\\', 'n')
		case c == '"' && quote:
			w.b = append(w.b, '\\', '"')
		default:
			w.b = append(w.b, c)
		}
	}
}

func (w *expo) float(f float64) {
	switch {
	case f == 1:
		w.b = append(w.b, '1')
	case f == 0:
		w.b = append(w.b, '0')
	case f == -1:
		w.b = append(w.b, "-1"...)
	case math.IsNaN(f):
		w.b = append(w.b, "NaN"...)
	case math.IsInf(f, +1):
		w.b = append(w.b, "+Inf"...)
	case math.IsInf(f, -1):
		w.b = append(w.b, "-Inf"...)
	default:
		w.b = strconv.AppendFloat(w.b, f, 'g', -1, 64)
	}
}

// counterFamily is a family of counters with one label.
func counterFamily(name, help, labelName string, s *series[string, atomic.Uint64]) family {
	return family{name: name, help: help, typ: typeCounter, emit: func(w *expo) {
		all := s.all()
		keys := slices.Sorted(maps.Keys(all))
		for _, k := range keys {
			w.sample(name, "", []label{{labelName, k}}, "", 0, float64(all[k].Load()))
		}
	}}
}

// expose appends the exposition to b: every family, or those named in
// names when there are any (the name[] query parameter).
func (m *Metrics) expose(b []byte, names []string) []byte {
	fs := make([]family, 0, 64)
	fs = m.runtime.families(fs)
	fs = m.processFamilies(fs)
	fs = m.posternFamilies(fs)
	slices.SortFunc(fs, func(a, b family) int { return strings.Compare(a.name, b.name) })
	w := expo{b: b}
	for i := range fs {
		if len(names) == 0 || slices.Contains(names, fs[i].name) {
			w.write(&fs[i])
		}
	}
	return w.b
}

func (m *Metrics) posternFamilies(fs []family) []family {
	bi := m.build
	lastOK := 0.0
	if m.lastReloadOK.Load() {
		lastOK = 1
	}
	fs = append(fs,
		family{name: "postern_build_info", help: "Always 1; the labels identify the running binary.", typ: typeGauge, value: 1,
			labels: []label{{"commit", bi.Commit}, {"goversion", bi.GoVersion}, {"version", bi.Version}}},
		family{name: "postern_in_flight_requests", help: "Requests being handled right now.", typ: typeGauge,
			value: float64(m.inFlight.Load())},
		family{name: "postern_config_last_reload_successful", help: "1 if the last configuration reload succeeded (or none was tried), 0 if it failed.", typ: typeGauge,
			value: lastOK},
		family{name: "postern_config_last_reload_success_timestamp_seconds", help: "When the configuration now served was loaded, as a Unix time.", typ: typeGauge,
			value: m.lastReloadTime.get()},
		family{name: "postern_config_reloads_total", help: "Configuration reloads by result (success, failure).", typ: typeCounter,
			emit: func(w *expo) {
				w.sample("postern_config_reloads_total", "", []label{{"result", "failure"}}, "", 0, float64(m.reloadsFailed.Load()))
				w.sample("postern_config_reloads_total", "", []label{{"result", "success"}}, "", 0, float64(m.reloadsOK.Load()))
			}},
		counterFamily("postern_refusals_total", "Requests postern refused itself, by reason (client_not_allowed, no_route, connect, bad_request, rate_limited, auth_failed, destination_blocked, upstream_busy, store_unavailable).",
			"reason", m.refusals),
		counterFamily("postern_rate_limit_hits_total", "Requests refused by a rate limit, by limit (per_client, per_number, daily_max).",
			"limit", m.rateLimitHits),
		family{name: "postern_messages_total", help: "Messages that matched a route, by route, provider and outcome (delivered, refused, unknown, partial; sandbox: taken by the sandbox provider, not sent).", typ: typeCounter,
			emit: m.emitMessages},
		family{name: "postern_upstream_request_duration_seconds", help: "Time from sending a provider request to having read its reply (or failing), by route and provider.", typ: typeHistogram,
			emit: m.emitLatency},
		family{name: "postern_upstream_certificate_expiry_timestamp_seconds", help: "NotAfter of the leaf certificate last verified for each provider host, as a Unix time.", typ: typeGauge,
			emit: m.emitExpiry},
	)
	if m.storeUsed.Load() {
		up := 0.0
		if m.storeUp.Load() {
			up = 1
		}
		fs = append(fs,
			family{name: "postern_store_up", help: "1 while the [cluster] store answers and limits and duplicate suppression are shared; 0 while this replica falls back (on_store_error).", typ: typeGauge,
				value: up},
			family{name: "postern_store_errors_total", help: "[cluster] store operations that failed (down, slower than store_timeout, or refused), health probes included.", typ: typeCounter,
				value: float64(m.storeErrors.Load())})
	}
	return fs
}

// emitMessages writes postern_messages_total, labels and series in
// client_golang's order: outcome, provider, route.
func (m *Metrics) emitMessages(w *expo) {
	all := m.messages.all()
	keys := slices.SortedFunc(maps.Keys(all), func(a, b messageKey) int {
		return cmp.Or(strings.Compare(a.outcome, b.outcome), strings.Compare(a.provider, b.provider), strings.Compare(a.route, b.route))
	})
	for _, k := range keys {
		w.sample("postern_messages_total", "", []label{{"outcome", k.outcome}, {"provider", k.provider}, {"route", k.route}},
			"", 0, float64(all[k].Load()))
	}
}

// emitLatency writes the histogram: cumulative buckets, +Inf, _sum, _count.
func (m *Metrics) emitLatency(w *expo) {
	const name = "postern_upstream_request_duration_seconds"
	all := m.upstreamLatency.all()
	keys := slices.SortedFunc(maps.Keys(all), func(a, b routeKey) int {
		return cmp.Or(strings.Compare(a.provider, b.provider), strings.Compare(a.route, b.route))
	})
	for _, k := range keys {
		h := all[k]
		labels := []label{{"provider", k.provider}, {"route", k.route}}
		var total uint64
		for i := range h.counts {
			total += h.counts[i].Load()
			le := math.Inf(+1)
			if i < len(latencyBuckets) {
				le = latencyBuckets[i]
			}
			w.sample(name, "_bucket", labels, "le", le, float64(total))
		}
		w.sample(name, "_sum", labels, "", 0, math.Float64frombits(h.sum.Load()))
		w.sample(name, "_count", labels, "", 0, float64(total))
	}
}

// emitExpiry writes one series per provider host the tracker verified.
func (m *Metrics) emitExpiry(w *expo) {
	t := m.certExpiry.Load()
	if t == nil {
		return
	}
	for _, l := range t.Leaves() { // sorted by host
		w.sample("postern_upstream_certificate_expiry_timestamp_seconds", "", []label{{"host", l.Host}}, "", 0, float64(l.NotAfter.Unix()))
	}
}

// Handler serves the exposition, as promhttp.HandlerFor(reg,
// HandlerOpts{}) did: text format 0.0.4 whatever the Accept header asks
// (postern offers neither OpenMetrics nor protobuf), the escaping scheme the
// scraper asks for echoed in Content-Type (names are plain, so the body does
// not change), gzip when Accept-Encoding prefers it, and name[] query
// parameters selecting families.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		body := m.expose(make([]byte, 0, 16<<10), req.URL.Query()["name[]"])
		h := rw.Header()
		h.Add("Vary", "Accept")
		h.Add("Vary", "Accept-Encoding")
		h.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8; escaping="+escapingScheme(req.Header.Get("Accept")))
		if negotiateEncoding(req.Header.Values("Accept-Encoding")) != "gzip" {
			_, _ = rw.Write(body) // a scraper that went away is nobody's error
			return
		}
		h.Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(rw)
		_, _ = gz.Write(body)
		_ = gz.Close()
	})
}
