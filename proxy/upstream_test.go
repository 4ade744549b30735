package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBadLegacyRequestsGetLegacyErrors: malformed ISE requests are answered
// in the legacy error format and nothing is sent.
func TestBadLegacyRequestsGetLegacyErrors(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "max_recipients = 2"), env())
	base := "/http/sendmsg?user=u&password=" + legacyPass + "&api_id=1"
	for _, tc := range []struct {
		name, query string
		status      int
		body        string
	}{
		{"missing to", base + "&text=hello+secret+text", 400, "ERR: 101, Invalid or missing parameters: to\n"},
		{"missing text", base + "&to=15551234567", 400, "ERR: 107, Empty message\n"},
		{"short number", base + "&to=12345&text=hello+secret+text", 400, "ERR: 105, Invalid destination address\n"},
		{"long number", base + "&to=1234567890123456&text=hello+secret+text", 400, "ERR: 105, Invalid destination address\n"},
		{"letters in number", base + "&to=1555CALLNOW&text=hello+secret+text", 400, "ERR: 105, Invalid destination address\n"},
		{"bad percent encoding", base + "&to=15551234567&text=hello%zzsecret+text", 400, "ERR: 101, Invalid or missing parameters: malformed URL encoding\n"},
		{"invalid UTF-8", base + "&to=15551234567&text=hello%ff%fesecret+text", 400, "ERR: 116, Invalid Unicode data\n"},
		{"bad unicode hex", base + "&to=15551234567&unicode=1&text=00zz", 400, "ERR: 116, Invalid Unicode data\n"},
		{"too many recipients", base + "&to=15551234567,15551234568,15551234569&text=hello+secret+text", 400, "ERR: 101, Too many recipients\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := p.Get(t, "proxy", clickatellIn, tc.query)
			if status != tc.status || body != tc.body {
				t.Errorf("got %d %q, want %d %q", status, body, tc.status, tc.body)
			}
		})
	}
	if n := len(fp.Requests()); n != 0 {
		t.Errorf("provider received %d requests, want none", n)
	}
	mustNotContain(t, "audit", p.Audit.String(), "hello secret text", "secret", legacyPass)
	mustNotContain(t, "log", p.Log.String(), "hello secret text", "secret", legacyPass)
}

// TestUnicodeHexText: unicode=1 texts (UTF-16BE hex, as the legacy API
// takes them) reach the provider as the characters they encode.
func TestUnicodeHexText(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), ""), env())
	// "Hé 👋" = 0048 00E9 0020 D83D DC4B
	status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?to=15551234567&unicode=1&text=004800E90020D83DDC4B")
	if status != http.StatusOK {
		t.Fatalf("got %d %q", status, body)
	}
	texts, _, err := oneAPIBody(fp.Requests()[0].Body)
	if err != nil || len(texts) != 1 || texts[0] != "Hé 👋" {
		t.Errorf("provider got %q (%v), want %q", texts, err, "Hé 👋")
	}
}

// TestProviderErrorsMapToLegacyCodes: what the provider says no with becomes
// the legacy ERR code ISE understands, with 502 (an upstream refusal).
func TestProviderErrorsMapToLegacyCodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		reply  string
		want   string
	}{
		{"bad key", 401, `{"messages":[],"error":{"code":1,"description":"Invalid or missing Integration API Key"}}`, "ERR: 001, Authentication failed\n"},
		{"no credit", 402, `{"messages":[],"error":{"code":20,"description":"Insufficient balance"}}`, "ERR: 301, No credit left\n"},
		{"throttled as 400/43", 400, `{"messages":[],"error":{"code":43,"description":"Rate limit"}}`, "ERR: 130, Maximum MT limit exceeded\n"},
		{"invalid recipient", 400, `{"messages":[{"apiMessageId":null,"accepted":false,"to":"15551234567","error":{"code":25,"description":"Invalid recipient"}}],"error":null}`, "ERR: 105, Invalid destination address\n"},
		{"2xx with an error body", 202, `{"messages":[],"error":{"code":1,"description":"Invalid or missing Integration API Key"}}`, "ERR: 001, Authentication failed\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, func(w http.ResponseWriter, _ received) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.reply)
			})
			p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), ""), env())
			status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "hi there"))
			if status != http.StatusBadGateway || body != tc.want {
				t.Errorf("got %d %q, want 502 %q", status, body, tc.want)
			}
			if !strings.Contains(p.Audit.String(), `"outcome":"refused"`) {
				t.Errorf("audit: want outcome refused:\n%s", p.Audit)
			}
		})
	}
}

// TestUpstreamTimeoutIs504: a provider that takes the request and never
// answers gets the message marked unknown, and ISE gets 504 in time.
func TestUpstreamTimeoutIs504(t *testing.T) {
	release := make(chan struct{})
	fp := newFakeProvider(t, func(w http.ResponseWriter, _ received) { <-release })
	t.Cleanup(func() { close(release) })
	cfg := "[server]\nrequest_timeout = \"300ms\"\n" + routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPostern(t, cfg, env())
	status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "hi there"))
	if status != http.StatusGatewayTimeout || body != "ERR: 901, Upstream timeout, outcome unknown\n" {
		t.Errorf("got %d %q, want 504 outcome unknown", status, body)
	}
	if !strings.Contains(p.Audit.String(), `"outcome":"unknown"`) {
		t.Errorf("audit: want outcome unknown:\n%s", p.Audit)
	}
}

// TestUnreachableUpstreamIs502: nothing listening means nothing sent.
func TestUnreachableUpstreamIs502(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	ca := fp.CAFile(t)
	endpoint := fp.URL("/v1/message")
	fp.Srv.Close()
	p := startPostern(t, routeConfig(ca, "r", "clickatell-one", endpoint, ""), env())
	status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "hi there"))
	if status != http.StatusBadGateway || body != "ERR: 901, Upstream unreachable, message not sent\n" {
		t.Errorf("got %d %q, want 502 not sent", status, body)
	}
}

// TestUpstreamConnectionsAreReused: a burst of guest registrations shares
// pooled, kept-alive TLS connections instead of a handshake per message.
func TestUpstreamConnectionsAreReused(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), ""), env())
	for i := range 20 {
		if status, body := p.Get(t, "proxy", clickatellIn, fmt.Sprintf("/http/sendmsg?to=1555123%04d&text=msg+%d", i, i)); status != http.StatusOK {
			t.Fatalf("message %d: got %d %q", i, status, body)
		}
	}
	if n := fp.Connections(); n != 1 {
		t.Errorf("20 sequential messages used %d upstream connections, want 1", n)
	}
}

// TestSandboxProvider: the sandbox answers like Clickatell, sends nothing,
// and says so loudly in the log with masked numbers only.
func TestSandboxProvider(t *testing.T) {
	p := startPostern(t, `
[[route]]
name = "try-me"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "sandbox"
`, nil)
	for i, want := range []string{"ID: sandbox-1\n", "ID: sandbox-2 To: 15551234567\nID: sandbox-3 To: 15551234568\n"} {
		to := "15551234567"
		if i == 1 {
			to += ",15551234568"
		}
		status, body := p.Get(t, "direct", "", "/http/sendmsg?to="+to+"&text=sandbox+secret+text")
		if status != http.StatusOK || body != want {
			t.Errorf("got %d %q, want 200 %q", status, body, want)
		}
	}
	log := p.Log.String()
	if !strings.Contains(log, "NOT SENT") || !strings.Contains(log, `"not_sent":true`) || !strings.Contains(log, "*******4567") {
		t.Errorf("log should carry a loud not-sent marker and masked numbers:\n%s", log)
	}
	mustNotContain(t, "log+audit", log+p.Audit.String(), "sandbox secret text", "15551234567")
}
