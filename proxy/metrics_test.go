package proxy_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/postern/postern/proxy/config"
)

// scrape fetches /metrics from a real admin listener and parses it with the
// Prometheus text parser, as a Prometheus server would.
func scrape(t *testing.T, adminURL string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// metricValue returns the value of the series of family name whose labels
// include all of labels, and whether it exists. Histograms report their
// sample count.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	fam, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// startAdmin serves p's admin endpoints on a loopback listener.
func startAdmin(t *testing.T, p *postern, load func() (*config.Config, error)) string {
	t.Helper()
	srv := httptest.NewServer(p.Srv.AdminHandler(load))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestMetricsCountSuccessRefusalAndUpstreamFailure: /metrics moves as the
// traffic does — a delivered message, a refused request and an upstream
// failure each show up under their labels, and upstream latency and the
// provider's certificate expiry are recorded.
func TestMetricsCountSuccessRefusalAndUpstreamFailure(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r received) {
		if bytes.Contains(r.Body, []byte("hang up")) {
			// The provider drops the connection after reading the request.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		oneAPIReply()(w, r)
	})
	p := startPostern(t, routeConfig(fp.CAFile(t), "one", "clickatell-one", fp.URL("/v1/message"), ""), env())
	admin := startAdmin(t, p, nil)

	before := scrape(t, admin)
	if v, ok := metricValue(before, "postern_messages_total", map[string]string{"outcome": "delivered"}); ok && v != 0 {
		t.Fatalf("delivered before any message = %v", v)
	}
	if v, ok := metricValue(before, "postern_refusals_total", map[string]string{"reason": "no_route"}); !ok || v != 0 {
		t.Errorf("refusals{no_route} should exist at 0 from the start, got %v (exists %v)", v, ok)
	}
	for _, limit := range []string{"per_client", "per_number", "daily_max"} {
		if v, ok := metricValue(before, "postern_rate_limit_hits_total", map[string]string{"limit": limit}); !ok || v != 0 {
			t.Errorf("rate_limit_hits{limit=%s} should exist at 0, got %v (exists %v)", limit, v, ok)
		}
	}

	if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "welcome")); status != http.StatusOK {
		t.Fatalf("success: %d %q", status, body)
	}
	if status, _ := p.Get(t, "proxy", "evil.example.com", "/http/sendmsg?"+legacyQuery("15551234567", "x")); status != http.StatusForbidden {
		t.Fatalf("no route: %d, want 403", status)
	}
	if status, _ := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?to=12&text=x"); status != http.StatusBadRequest {
		t.Fatalf("bad request: %d, want 400", status)
	}
	if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "please hang up")); status != http.StatusBadGateway {
		t.Fatalf("upstream failure: %d %q, want 502", status, body)
	}

	after := scrape(t, admin)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"postern_messages_total", map[string]string{"route": "one", "provider": "clickatell-one", "outcome": "delivered"}, 1},
		{"postern_messages_total", map[string]string{"route": "one", "provider": "clickatell-one", "outcome": "unknown"}, 1},
		{"postern_messages_total", map[string]string{"route": "one", "provider": "clickatell-one", "outcome": "refused"}, 1},
		{"postern_refusals_total", map[string]string{"reason": "no_route"}, 1},
		{"postern_refusals_total", map[string]string{"reason": "bad_request"}, 1},
		{"postern_refusals_total", map[string]string{"reason": "client_not_allowed"}, 0},
		{"postern_upstream_request_duration_seconds", map[string]string{"route": "one", "provider": "clickatell-one"}, 2},
		{"postern_upstream_certificate_expiry_timestamp_seconds", map[string]string{"host": "127.0.0.1"}, float64(fp.Srv.Certificate().NotAfter.Unix())},
		{"postern_in_flight_requests", nil, 0},
		{"postern_config_reloads_total", map[string]string{"result": "failure"}, 0},
	} {
		got, ok := metricValue(after, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (exists %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := metricValue(after, "postern_build_info", nil); !ok {
		t.Error("postern_build_info missing")
	}
	if _, ok := metricValue(after, "process_resident_memory_bytes", nil); !ok {
		t.Error("process metrics missing")
	}
}

// TestHealthAndReadiness: /healthz answers while the process runs; /readyz
// only while the listener serves.
func TestHealthAndReadiness(t *testing.T) {
	p := startPostern(t, sandboxRoute, nil)
	admin := startAdmin(t, p, nil)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/nope": 404} {
		resp, err := http.Get(admin + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := http.Post(admin+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("reload without a loader: %d, want 501", resp.StatusCode)
	}
}

const sandboxRoute = `
[[route]]
name = "try-me"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "sandbox"
`

// TestMetricsCountGuardrailRefusals: rate limits, blocked destinations and
// failed proxy authentication each show up under their own refusal reason,
// and rate-limit hits under the limit that fired.
func TestMetricsCountGuardrailRefusals(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cfg := "[server]\nproxy_user = \"ise\"\nproxy_password = \"env:PROXY_PW\"\n" +
		strings.Replace(routeConfig(fp.CAFile(t), "one", "clickatell-one", fp.URL("/v1/message"), ""), `per_number = "off"`, `per_number = "1/1h"`, 1)
	e := env()
	e["PROXY_PW"] = "pw-metrics-1"
	p := startPostern(t, cfg, e)
	admin := startAdmin(t, p, nil)
	proxied := func(user, number string) int {
		u, _ := url.Parse("http://" + user + "@" + p.Addr)
		c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(u)}}
		resp, err := c.Get("http://api.clickatell.com/http/sendmsg?" + legacyQuery(number, "metrics"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		user, number string
		want         int
	}{
		{"ise:pw-metrics-1", "15551234567", http.StatusOK},
		{"ise:pw-metrics-1", "15551234567", http.StatusTooManyRequests}, // per_number 1/1h
		{"ise:wrong", "15551234568", http.StatusProxyAuthRequired},
		{"ise:pw-metrics-1", "447781234567", http.StatusOK},
		{"ise:pw-metrics-1", "448712345678", http.StatusForbidden}, // UK premium rate
	} {
		if got := proxied(tc.user, tc.number); got != tc.want {
			t.Errorf("%s to %s: %d, want %d", tc.user, tc.number, got, tc.want)
		}
	}
	m := scrape(t, admin)
	for _, w := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"postern_rate_limit_hits_total", map[string]string{"limit": "per_number"}, 1},
		{"postern_rate_limit_hits_total", map[string]string{"limit": "per_client"}, 0},
		{"postern_refusals_total", map[string]string{"reason": "rate_limited"}, 1},
		{"postern_refusals_total", map[string]string{"reason": "auth_failed"}, 1},
		{"postern_refusals_total", map[string]string{"reason": "destination_blocked"}, 1},
		{"postern_refusals_total", map[string]string{"reason": "bad_request"}, 0},
		{"postern_messages_total", map[string]string{"outcome": "delivered"}, 2},
	} {
		if v, ok := metricValue(m, w.name, w.labels); !ok || v != w.want {
			t.Errorf("%s%v = %v (exists %v), want %v", w.name, w.labels, v, ok, w.want)
		}
	}
}
