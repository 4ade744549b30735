package metrics

import (
	"bufio"
	"compress/gzip"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/trust"
)

// both drives postern's Metrics and the client_golang reference with the
// same events.
type both struct {
	m   *Metrics
	ref *refMetrics
}

func newBoth(bi BuildInfo) both { return both{New(bi), newRefMetrics(bi)} }

func (b both) record(a audit.Record) { b.m.Record(&a); b.ref.Record(&a) }
func (b both) rateLimitHit(l string) { b.m.RateLimitHit(l); b.ref.RateLimitHit(l) }
func (b both) reloaded(ok bool)      { b.m.Reloaded(ok); b.ref.Reloaded(ok) }
func (b both) storeUp(up bool)       { b.m.StoreUp(up); b.ref.StoreUp(up) }
func (b both) storeError()           { b.m.StoreError(); b.ref.StoreError() }
func (b both) started() func() {
	d1, d2 := b.m.Started(), b.ref.Started()
	return func() { d1(); d2() }
}
func (b both) trackExpiry(t *trust.ExpiryTracker) { b.m.TrackExpiry(t); b.ref.TrackExpiry(t) }
func (b both) observe(route, provider string, ds ...time.Duration) {
	o, ref := b.m.Upstream(route, provider), b.ref.Upstream(route, provider)
	for _, d := range ds {
		o.Observe(d)
		ref(d)
	}
}

// hostile are label values an operator may choose (route and provider
// names) that the text format must escape, and some it passes as they are.
var hostile = []string{`quo"te`, `back\slash`, "new\nline", `all"\` + "\n" + `three`, "ünïcödé", "sp ace,comma=eq{}", ""}

// stableValue reports whether a sample of family name has the same value
// in two scrapes taken one after the other (the runtime's and the
// process's mostly move; their names, help, types and labels must not).
func stableValue(name string) bool {
	switch name {
	case "go_info", "go_gc_gogc_percent", "go_gc_gomemlimit_bytes", "go_sched_gomaxprocs_threads",
		"process_max_fds", "process_virtual_memory_max_bytes", "process_start_time_seconds":
		return true
	case "postern_config_last_reload_success_timestamp_seconds": // each took time.Now() itself
		return false
	}
	return !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_")
}

// familyOf is the family a sample line belongs to.
func familyOf(key string) string {
	name, _, _ := strings.Cut(key, "{")
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && (strings.HasPrefix(base, "go_gc_duration") || strings.HasPrefix(base, "postern_upstream_request")) {
			return base
		}
	}
	return name
}

// scrapeBoth serves req to both handlers and returns their answers.
func scrapeBoth(t *testing.T, b both, req *http.Request) (got, want *httptest.ResponseRecorder) {
	t.Helper()
	got, want = httptest.NewRecorder(), httptest.NewRecorder()
	b.ref.Handler().ServeHTTP(want, req)
	b.m.Handler().ServeHTTP(got, req)
	return got, want
}

func body(t *testing.T, r *httptest.ResponseRecorder) string {
	t.Helper()
	if r.Header().Get("Content-Encoding") != "gzip" {
		return r.Body.String()
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	return string(b)
}

// compareExpositions fails the test for every line of got that differs from
// want: HELP and TYPE lines and stable samples byte for byte, the others by
// name and labels (their values must still be numbers).
func compareExpositions(t *testing.T, got, want string) {
	t.Helper()
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(gl) != len(wl) {
		t.Errorf("%d lines, client_golang %d", len(gl), len(wl))
	}
	bad := 0
	for i := 0; i < len(gl) && i < len(wl) && bad < 10; i++ {
		g, w := gl[i], wl[i]
		if g == w {
			continue
		}
		gk, gv, _ := cutLast(g)
		wk, _, _ := cutLast(w)
		if !strings.HasPrefix(w, "#") && gk == wk && !stableValue(familyOf(wk)) {
			if _, err := strconv.ParseFloat(gv, 64); err == nil || gv == "+Inf" || gv == "NaN" {
				continue
			}
		}
		t.Errorf("line %d:\n got  %q\n want %q", i+1, g, w)
		bad++
	}
}

func cutLast(line string) (key, value string, ok bool) {
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return line, "", false
	}
	return line[:i], line[i+1:], true
}

// TestExpositionMatchesClientGolang: /metrics answers what client_golang
// answered for the same events — every family, HELP, TYPE, label order,
// series order, bucket, escaping of hostile route names and build labels,
// the series that exist at 0, the store's families only once a store is
// used, the Go runtime's and the process's families — at start, after
// traffic, and after the store comes up.
func TestExpositionMatchesClientGolang(t *testing.T) {
	b := newBoth(BuildInfo{Version: `v1.2.3 "quoted"`, Commit: `back\slash`, GoVersion: "go1.26\nnewline"})
	scrape := func(stage string) {
		t.Helper()
		got, want := scrapeBoth(t, b, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		for _, h := range []string{"Content-Type", "Content-Encoding"} {
			if got.Header().Get(h) != want.Header().Get(h) {
				t.Errorf("%s: %s %q, client_golang %q", stage, h, got.Header().Get(h), want.Header().Get(h))
			}
		}
		if g, w := got.Header().Values("Vary"), want.Header().Values("Vary"); strings.Join(g, "|") != strings.Join(w, "|") {
			t.Errorf("%s: Vary %q, client_golang %q", stage, g, w)
		}
		t.Run(stage, func(t *testing.T) { compareExpositions(t, body(t, got), body(t, want)) })
	}
	scrape("fresh")

	// Routes as the deliverer registers them (series at 0), then traffic.
	b.observe("one", "clickatell-one")
	b.observe("sms", "twilio", 5*time.Millisecond, time.Second, 30*time.Second, 0, time.Hour, 7*time.Millisecond, 42*time.Millisecond)
	for i, name := range hostile {
		b.observe(name, hostile[len(hostile)-1-i], time.Duration(i)*time.Millisecond)
		b.record(audit.Record{Mode: "proxy", Route: name, Provider: "p", Outcome: "delivered", Status: 200})
		b.record(audit.Record{Mode: "proxy", Route: "r", Provider: name, Outcome: "refused", Status: 400})
	}
	for range 3 {
		b.record(audit.Record{Mode: "direct", Route: "sms", Provider: "twilio", Outcome: "delivered", Status: 200})
	}
	b.record(audit.Record{Mode: "smtp", Route: "sms", Provider: "twilio", Outcome: "refused", Status: 451})
	b.record(audit.Record{Mode: "proxy", Route: "sms", Provider: "twilio", Outcome: "unknown", Status: 502})
	b.record(audit.Record{Mode: "proxy", Outcome: "refused", Status: 403, Refusal: RefusalNoRoute})
	b.record(audit.Record{Mode: "smtp", Outcome: "refused", Status: 550, Refusal: `evil"reason` + "\n"})
	b.rateLimitHit(LimitPerNumber)
	b.rateLimitHit(LimitDailyMax)
	b.rateLimitHit(LimitDailyMax)
	b.reloaded(false)
	done := b.started()
	defer done()
	b.started()()
	tr := trust.NewExpiryTracker(nil, nil)
	tr.Observe("b.example", &x509.Certificate{NotAfter: time.Unix(1900000000, 0)})
	tr.Observe("A.example", &x509.Certificate{NotAfter: time.Unix(1800000000, 0)})
	b.trackExpiry(tr)
	b.storeError()
	b.storeError()
	scrape("traffic")

	b.storeUp(true)
	b.reloaded(true)
	scrape("store up")
}

// TestNegotiationMatchesClientGolang: what a scraper's Accept and
// Accept-Encoding get — Content-Type (with its escaping parameter),
// Content-Encoding, Vary — is what promhttp.HandlerFor(reg, HandlerOpts{})
// answered, except that a scraper preferring protobuf now gets the text
// format (postern offers no protobuf), and name[] selects families.
func TestNegotiationMatchesClientGolang(t *testing.T) {
	b := newBoth(BuildInfo{Version: "v", Commit: "c", GoVersion: "g"})
	const proto = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
	for _, c := range []struct {
		accept, encoding string
		protobuf         bool // client_golang answered protobuf
	}{
		{},
		{accept: "*/*"},
		{accept: "text/plain"},
		{accept: "text/plain;version=0.0.4"},
		{accept: "text/plain;version=1.0.0;escaping=allow-utf-8"},
		// Prometheus 2's scrape Accept, and 3's.
		{accept: "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"},
		{accept: "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", encoding: "gzip"},
		{accept: "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.5,text/plain;version=0.0.4;escaping=dots;q=0.2,*/*;q=0.1"},
		{accept: "text/plain;version=0.0.4;escaping=values"},
		{accept: "text/plain;escaping=bogus"},
		{accept: "application/openmetrics-text"},
		{accept: "application/json, text/*;q=0.2"},
		{accept: proto + ";q=0.6," + "text/plain;version=0.0.4;q=0.3", protobuf: true},
		{accept: proto, protobuf: true},
		{encoding: "gzip"},
		{encoding: "gzip, deflate, br"},
		{encoding: "gzip;q=0"},
		{encoding: "identity;q=0.5, gzip;q=0.4"},
		{encoding: "identity;q=0.4, gzip;q=0.5"},
		{encoding: "*"},
		{encoding: "br"},
		{encoding: "GZIP"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics?name[]=postern_refusals_total&name[]=go_info&name[]=nope", nil)
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		if c.encoding != "" {
			req.Header.Set("Accept-Encoding", c.encoding)
		}
		got, want := scrapeBoth(t, b, req)
		if got.Header().Get("Content-Encoding") != want.Header().Get("Content-Encoding") {
			t.Errorf("%+v: Content-Encoding %q, client_golang %q", c, got.Header().Get("Content-Encoding"), want.Header().Get("Content-Encoding"))
		}
		if g, w := got.Header().Values("Vary"), want.Header().Values("Vary"); strings.Join(g, "|") != strings.Join(w, "|") {
			t.Errorf("%+v: Vary %q, client_golang %q", c, g, w)
		}
		gotType := got.Header().Get("Content-Type")
		if c.protobuf {
			if !strings.HasPrefix(want.Header().Get("Content-Type"), "application/vnd.google.protobuf") {
				t.Errorf("%+v: client_golang answered %q, not protobuf", c, want.Header().Get("Content-Type"))
			}
			if !strings.HasPrefix(gotType, "text/plain; version=0.0.4; charset=utf-8; escaping=") {
				t.Errorf("%+v: Content-Type %q, want the text format", c, gotType)
			}
			continue
		}
		if gotType != want.Header().Get("Content-Type") {
			t.Errorf("%+v: Content-Type %q, client_golang %q", c, gotType, want.Header().Get("Content-Type"))
		}
		g, w := body(t, got), body(t, want)
		if !strings.Contains(g, "# TYPE go_info gauge\n") || strings.Contains(g, "go_goroutines") {
			t.Errorf("%+v: name[] did not select go_info and postern_refusals_total only:\n%s", c, g)
		}
		compareExpositions(t, g, w)
	}
}

// TestExpositionParsesAsTextFormat: each sample line is name{labels} value
// with every label value quoted and escaped, whatever the route names.
func TestExpositionParsesAsTextFormat(t *testing.T) {
	m := New(BuildInfo{})
	for _, name := range hostile {
		m.Upstream(name, name).Observe(time.Millisecond)
	}
	sc := bufio.NewScanner(strings.NewReader(string(m.expose(nil, nil))))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			continue
		}
		key, value, ok := cutLast(line)
		if _, err := strconv.ParseFloat(value, 64); !ok || (err != nil && value != "+Inf") {
			t.Errorf("line %q: value %q", line, value)
		}
		if strings.ContainsAny(key, "\n") || strings.Count(key, `"`)-strings.Count(key, `\"`) != 2*strings.Count(key, `="`) {
			t.Errorf("line %q: labels not quoted and escaped", line)
		}
	}
}
