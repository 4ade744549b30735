package proxy_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/proxytest"
)

// guardConfig is a one-route config (proxy mode for api.clickatell.com and
// direct mode for any host) with extra [server], [limits] and route keys.
func guardConfig(fp *fakeProvider, t testing.TB, server, limits, route string) string {
	return proxytest.Config{Server: server, CAFile: fp.CAFile(t), Limits: limits, Endpoint: fp.URL("/v1/message"), Extra: route}.TOML()
}

// fakeClock is a settable clock for rate limits.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestProxyAuthentication: with proxy_user set, a request without the
// right Proxy-Authorization gets 407 with a challenge, an audit line and a
// counted failure, in every way in and for CONNECT; the right one is sent
// and its audit line names the user.
func TestProxyAuthentication(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	const pw = "proxy-PW-secret-93"
	p := startPostern(t, guardConfig(fp, t, "proxy_user = \"ise\"\nproxy_password = \"env:PROXY_PW\"", "", ""),
		map[string]string{"TEST_TOKEN": testToken, "PROXY_PW": pw})
	target := "http://" + clickatellIn + "/http/sendmsg?" + legacyQuery("15551234567", "hi")
	proxyURL := func(userinfo *url.Userinfo) *url.URL { return &url.URL{Scheme: "http", Host: p.Addr, User: userinfo} }

	for _, tc := range []struct {
		name string
		via  *url.URL
	}{
		{"no credentials", proxyURL(nil)},
		{"wrong password", proxyURL(url.UserPassword("ise", "nope"))},
		{"wrong user", proxyURL(url.UserPassword("admin", pw))},
		{"password as user", proxyURL(url.UserPassword(pw, ""))},
	} {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		status, h, body := p.Do(t, req, tc.via)
		if status != http.StatusProxyAuthRequired || !strings.HasPrefix(h.Get("Proxy-Authenticate"), "Basic ") {
			t.Errorf("%s: got %d %q (Proxy-Authenticate %q), want 407 with a Basic challenge", tc.name, status, body, h.Get("Proxy-Authenticate"))
		}
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.Addr+"/http/sendmsg?"+legacyQuery("15551234567", "hi"), nil)
	if status, _, _ := p.Do(t, req, nil); status != http.StatusProxyAuthRequired {
		t.Errorf("direct request without credentials: got %d, want 407", status)
	}
	if status := p.RawConnect(t, "example.org:443", ""); status != http.StatusProxyAuthRequired {
		t.Errorf("CONNECT without credentials: got %d, want 407", status)
	}
	if len(fp.Requests()) != 0 {
		t.Fatalf("provider got %d requests from unauthenticated clients", len(fp.Requests()))
	}
	if got := p.Srv.Stats().AuthFailures; got != 6 {
		t.Errorf("AuthFailures = %d, want 6", got)
	}

	req, _ = http.NewRequest(http.MethodGet, target, nil)
	if status, _, body := p.Do(t, req, proxyURL(url.UserPassword("ise", pw))); status != http.StatusOK {
		t.Fatalf("right credentials: got %d %q, want 200", status, body)
	}
	if got := fp.Requests(); len(got) != 1 || got[0].Header.Get("Proxy-Authorization") != "" {
		t.Errorf("provider requests %d, Proxy-Authorization forwarded %q", len(got), got[0].Header.Get("Proxy-Authorization"))
	}
	if status := p.RawConnect(t, "example.org:443", "Basic "+basic("ise", pw)); status != http.StatusForbidden {
		t.Errorf("authenticated CONNECT: got %d, want 403 (never tunnelled)", status)
	}
	audit := p.Audit.String()
	for _, want := range []string{`"status":407,"reason":"proxy authentication missing"`, `"reason":"proxy authentication failed"`, `"proxy_user":"ise"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
	mustNotContain(t, "audit", audit, pw, basic("ise", pw))
}

func basic(u, p string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(u, p)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// TestLegacyCredentials: a route with legacy_* keys sends only requests
// that carry ISE's configured user, password and api_id.
func TestLegacyCredentials(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	route := fmt.Sprintf("legacy_user = %q\nlegacy_password = \"env:LEGACY_PW\"\nlegacy_api_id = %q", legacyUser, legacyAPIID)
	p := startPostern(t, guardConfig(fp, t, "", "", route), map[string]string{"TEST_TOKEN": testToken, "LEGACY_PW": legacyPass})
	for _, tc := range []struct{ name, query string }{
		{"wrong password", strings.Replace(legacyQuery("15551234567", "hi"), legacyPass, legacyPass+"x", 1)},
		{"wrong api_id", strings.Replace(legacyQuery("15551234567", "hi"), legacyAPIID, "1", 1)},
		{"no credentials", "to=15551234567&text=hi"},
		{"password only", "password=" + legacyPass + "&to=15551234567&text=hi"},
	} {
		status, body := p.Get(t, "direct", "", "/http/sendmsg?"+tc.query)
		if status != http.StatusForbidden || body != "ERR: 001, Authentication failed\n" {
			t.Errorf("%s: got %d %q, want 403 ERR: 001", tc.name, status, body)
		}
	}
	if len(fp.Requests()) != 0 {
		t.Fatalf("provider got %d requests with bad legacy credentials", len(fp.Requests()))
	}
	if status, body := p.Get(t, "direct", "", "/http/sendmsg?"+legacyQuery("15551234567", "hi")); status != http.StatusOK {
		t.Fatalf("right credentials: got %d %q", status, body)
	}
	if got := p.Srv.Stats().AuthFailures; got != 4 {
		t.Errorf("AuthFailures = %d, want 4", got)
	}
	if n := strings.Count(p.Audit.String(), `"code":"001"`); n != 4 {
		t.Errorf("audit has %d authentication refusals, want 4:\n%s", n, p.Audit)
	}
}

// TestRateLimits: per_number, per_client and daily_max each allow exactly
// their count, then answer 429 with the legacy throttling error, and refill
// on the injected clock.
func TestRateLimits(t *testing.T) {
	const throttled = "ERR: 130, Maximum MT limit exceeded\n"
	start := func(t *testing.T, limits string) (*postern, *fakeProvider, *fakeClock) {
		fp := newFakeProvider(t, oneAPIReply())
		clock := &fakeClock{now: time.Date(2025, 3, 14, 23, 0, 0, 0, time.UTC)}
		p := startPosternWith(t, guardConfig(fp, t, "", limits, ""), env(), proxy.Options{Now: clock.Now})
		return p, fp, clock
	}
	send := func(t *testing.T, p *postern, to string) (int, string) {
		return p.Get(t, "direct", "", "/http/sendmsg?"+legacyQuery(to, "hi"))
	}
	t.Run("per_number", func(t *testing.T) {
		p, fp, clock := start(t, `per_number = "3/3m"`)
		for i := range 3 {
			if status, body := send(t, p, "15551234567"); status != 200 {
				t.Fatalf("message %d: got %d %q", i+1, status, body)
			}
		}
		if status, body := send(t, p, "+1 555 123 4567"); status != 429 || body != throttled {
			t.Fatalf("4th message: got %d %q, want 429 %q", status, body, throttled)
		}
		if status, _ := send(t, p, "15551234567,15557654321"); status != 429 {
			t.Fatalf("a message that includes the limited number: got %d, want 429", status)
		}
		if status, _ := send(t, p, "15557654321"); status != 200 {
			t.Fatalf("another number: got %d, want 200 (and its token not spent on the refused message)", status)
		}
		clock.Add(time.Minute - time.Millisecond)
		if status, _ := send(t, p, "15551234567"); status != 429 {
			t.Fatalf("just before a refill: got %d, want 429", status)
		}
		clock.Add(time.Millisecond)
		if status, _ := send(t, p, "15551234567"); status != 200 {
			t.Fatalf("after one refill: got %d, want 200", status)
		}
		if n := len(fp.Requests()); n != 5 {
			t.Errorf("provider got %d requests, want 5", n)
		}
		if !strings.Contains(p.Audit.String(), `"status":429,"route":"r"`) || !strings.Contains(p.Audit.String(), `"code":"130","reason":"Maximum MT limit exceeded: per_number limit reached"`) {
			t.Errorf("audit lacks the per_number refusal:\n%s", p.Audit)
		}
	})
	t.Run("per_client", func(t *testing.T) {
		p, fp, clock := start(t, "per_number = \"off\"\nper_client = \"2/10s\"")
		send(t, p, "15551234567")
		p.Get(t, "direct", "", "/no/such/route") // refused requests count too
		if status, body := send(t, p, "15551234567"); status != 429 || body != throttled {
			t.Fatalf("3rd request: got %d %q, want 429", status, body)
		}
		clock.Add(5 * time.Second)
		if status, _ := send(t, p, "15551234567"); status != 200 {
			t.Fatalf("after a refill: got %d, want 200", status)
		}
		if n := len(fp.Requests()); n != 2 {
			t.Errorf("provider got %d requests, want 2", n)
		}
		if p.Srv.Stats().Throttled != 1 {
			t.Errorf("Throttled = %d, want 1", p.Srv.Stats().Throttled)
		}
	})
	t.Run("daily_max", func(t *testing.T) {
		p, fp, clock := start(t, "per_number = \"off\"\ndaily_max = 4")
		if status, _ := send(t, p, "15551234567,15557654321,15550000001"); status != 200 {
			t.Fatal("3 recipients refused under a cap of 4")
		}
		if status, _ := send(t, p, "15551234567,15557654321"); status != 429 {
			t.Fatalf("5th and 6th recipients: got %d, want 429", status)
		}
		if status, _ := send(t, p, "15551234567"); status != 200 {
			t.Fatal("4th recipient refused")
		}
		if status, _ := send(t, p, "15551234567"); status != 429 {
			t.Fatalf("5th recipient: got %d, want 429", status)
		}
		clock.Add(time.Hour) // 00:00 UTC: a new day
		if status, _ := send(t, p, "15551234567"); status != 200 {
			t.Fatal("not reset on a new UTC day")
		}
		if n := len(fp.Requests()); n != 3 {
			t.Errorf("provider got %d requests, want 3", n)
		}
	})
	// daily_max is counted first; a message per_number then refuses was not
	// sent and must give its recipients back, or refused repeats to one
	// number would use up the whole day's budget for everybody.
	t.Run("per_number refusal gives daily_max back", func(t *testing.T) {
		p, fp, _ := start(t, "per_number = \"1/1h\"\ndaily_max = 3")
		if status, body := send(t, p, "15551234567"); status != 200 {
			t.Fatalf("first message: got %d %q", status, body)
		}
		for i := range 5 {
			if status, body := send(t, p, "15551234567"); status != 429 || body != throttled {
				t.Fatalf("repeat %d to a limited number: got %d %q, want 429", i+1, status, body)
			}
		}
		if status, body := send(t, p, "15557654321,15550000001"); status != 200 {
			t.Fatalf("2nd and 3rd recipients of the day after 5 per_number refusals: got %d %q, want 200", status, body)
		}
		if status, _ := send(t, p, "15550000002"); status != 429 {
			t.Fatalf("4th recipient of the day: got %d, want 429 (daily_max 3)", status)
		}
		audit := p.Audit.String()
		if n := strings.Count(audit, `limit exceeded: per_number limit reached"`); n != 5 {
			t.Errorf("audit has %d per_number refusals, want 5:\n%s", n, audit)
		}
		if n := strings.Count(audit, `limit exceeded: daily_max limit reached"`); n != 1 {
			t.Errorf("audit has %d daily_max refusals, want 1 (the 4th recipient):\n%s", n, audit)
		}
		if n := len(fp.Requests()); n != 2 {
			t.Errorf("provider got %d requests, want 2", n)
		}
	})
}

// TestCountryAllowlist: with allow_countries, only numbers of those
// countries are sent; premium-rate numbers never are.
func TestCountryAllowlist(t *testing.T) {
	const refused = "ERR: 114, Cannot route message\n"
	for _, tc := range []struct {
		name, limits string
		sent         []string
		refused      []string
	}{
		{"US and GB only", `allow_countries = ["US", "GB"]`,
			[]string{"12015550123", "+44 20 7946 0958", "447400123456"},
			[]string{"4915123456789", "33612345678", "449098790123", "15551234567", "12015550123,33612345678"}},
		{"no allowlist: premium still refused", ``,
			[]string{"4915123456789", "33612345678", "15551234567"},
			[]string{"449098790123", "33892123456", "611900123456"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, oneAPIReply())
			p := startPostern(t, guardConfig(fp, t, "", "per_number = \"off\"\n"+tc.limits, ""), env())
			for _, n := range tc.sent {
				if status, body := p.Get(t, "direct", "", "/http/sendmsg?"+legacyQuery(n, "hi")); status != 200 {
					t.Errorf("%s: got %d %q, want 200", n, status, body)
				}
			}
			for _, n := range tc.refused {
				if status, body := p.Get(t, "direct", "", "/http/sendmsg?"+legacyQuery(n, "hi")); status != 403 || body != refused {
					t.Errorf("%s: got %d %q, want 403 %q", n, status, body, refused)
				}
			}
			if got := len(fp.Requests()); got != len(tc.sent) {
				t.Errorf("provider got %d requests, want %d", got, len(tc.sent))
			}
		})
	}
}
