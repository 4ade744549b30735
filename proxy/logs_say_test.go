package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/deliver"
)

// TestRefusalAuditNamesWhatWasAsked: a request no route serves is audited
// with the host and path it asked for, never its query (which carries the
// legacy password and the message text); a refused CONNECT with the
// host:port it wanted to reach. Every way in is covered, and a path too long
// to be honest is cut.
func TestRefusalAuditNamesWhatWasAsked(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, routeConfig(fp.CAFile(t), "clickatell", "clickatell-one", fp.URL("/v1/message"), ""), env())
	q := "?" + legacyQuery("15551234567", "secret guest password 8841")
	long := "/" + strings.Repeat("a", 600)
	for _, tc := range []struct {
		name, mode, host, path string
		wantHost, wantPath     string
	}{
		{"proxy, unknown host", "proxy", "evil.example.com", "/http/sendmsg" + q, "evil.example.com", "/http/sendmsg"},
		{"proxy, wrong path", "proxy", clickatellIn, "/http/querymsg" + q, clickatellIn, "/http/querymsg"},
		{"dns, unknown host", "dns", "sms.example.net:8080", "/http/sendmsg" + q, "sms.example.net:8080", "/http/sendmsg"},
		{"direct, route pinned to a host", "direct", "", "/http/sendmsg" + q, p.Addr, "/http/sendmsg"},
		{"long path", "proxy", "evil.example.com", long + q, "evil.example.com", long[:256] + "..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(auditLines(t, p))
			if status, _ := p.Get(t, tc.mode, tc.host, tc.path); status != http.StatusForbidden {
				t.Fatalf("got %d, want 403", status)
			}
			lines := auditLines(t, p)
			if len(lines) != before+1 {
				t.Fatalf("%d new audit lines, want 1", len(lines)-before)
			}
			l := lines[len(lines)-1]
			if l["outcome"] != "refused" || l["reason"] != "no route matches" || l["host"] != tc.wantHost || l["path"] != tc.wantPath {
				t.Errorf("audit line %v, want outcome refused, reason no route matches, host %q, path %q", l, tc.wantHost, tc.wantPath)
			}
			if _, ok := l["target"]; ok {
				t.Errorf("a refused GET names a CONNECT target: %v", l)
			}
		})
	}

	t.Run("CONNECT", func(t *testing.T) {
		before := len(auditLines(t, p))
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(conn, "CONNECT api.example.org:8443 HTTP/1.1\r\nHost: api.example.org:8443\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatalf("reading CONNECT reply: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("CONNECT: got %d, want 403", resp.StatusCode)
		}
		lines := auditLines(t, p)
		if len(lines) != before+1 {
			t.Fatalf("%d new audit lines, want 1", len(lines)-before)
		}
		l := lines[len(lines)-1]
		if l["method"] != "CONNECT" || l["target"] != "api.example.org:8443" || l["reason"] != "CONNECT is not allowed" {
			t.Errorf("CONNECT audit line %v, want target api.example.org:8443", l)
		}
	})

	// Neither the query's password, its text nor its recipient is logged.
	mustNotContain(t, "audit", p.Audit.String(), legacyPass, "secret guest password", "15551234567", "user=")
	if n := len(fp.Requests()); n != 0 {
		t.Errorf("provider received %d requests, want none", n)
	}
}

// TestConnectRefusedBeforeAuthNamesTarget: a CONNECT refused because the
// client is not allowed also names its target.
func TestConnectRefusedBeforeAuthNamesTarget(t *testing.T) {
	p := startPostern(t, "[server]\nallow_clients = [\"10.9.9.9\"]\n"+sandboxRoute, nil)
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "CONNECT smtp.example.org:25 HTTP/1.1\r\nHost: smtp.example.org:25\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	lines := auditLines(t, p)
	if resp.StatusCode != http.StatusForbidden || len(lines) != 1 || lines[0]["target"] != "smtp.example.org:25" ||
		lines[0]["reason"] != "client not in allow_clients" {
		t.Errorf("got %d and audit %v, want 403 and target smtp.example.org:25", resp.StatusCode, lines)
	}
}

// TestSandboxIsNotDelivered (sandboxRoute is in metrics_test.go): a message the sandbox takes is answered as ISE
// expects, but its outcome is "sandbox" — in the audit line, in
// postern_messages_total and in `postern report` — never "delivered".
func TestSandboxIsNotDelivered(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.log")
	p := startPostern(t, fmt.Sprintf("[audit]\nfile = %q\n", file)+sandboxRoute, nil)
	admin := startAdmin(t, p, nil)
	status, body := p.Get(t, "direct", "", "/http/sendmsg?"+legacyQuery("15551234567,15557654321", "try me"))
	if status != http.StatusOK || !strings.Contains(body, "ID: sandbox-1") || !strings.Contains(body, "ID: sandbox-2") {
		t.Fatalf("sandbox reply %d %q, want 200 with sandbox ids", status, body)
	}
	lines := auditLines(t, p)
	if len(lines) != 1 || lines[0]["outcome"] != "sandbox" || lines[0]["provider"] != "sandbox" {
		t.Fatalf("audit %v, want one line with outcome sandbox", lines)
	}
	if att, _ := lines[0]["attempts"].([]any); len(att) != 1 || att[0].(map[string]any)["outcome"] != "sandbox" {
		t.Errorf("attempts %v, want one attempt with outcome sandbox", lines[0]["attempts"])
	}

	fams := scrape(t, admin)
	if v, ok := metricValue(fams, "postern_messages_total", map[string]string{"route": "try-me", "outcome": "sandbox"}); !ok || v != 1 {
		t.Errorf("postern_messages_total{outcome=sandbox} = %v (exists %v), want 1", v, ok)
	}
	if v, ok := metricValue(fams, "postern_messages_total", map[string]string{"outcome": "delivered"}); ok {
		t.Errorf("postern_messages_total{outcome=delivered} = %v, want no such series", v)
	}

	waitFor(t, "the audit file line", func() bool { b, _ := os.ReadFile(file); return strings.Count(string(b), `"msg":"message"`) == 1 })
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := audit.BuildReport(map[string]io.Reader{file: f}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if r.ByOutcome["sandbox"] != 1 || r.ByOutcome["delivered"] != 0 || r.Unverified != 0 {
		t.Errorf("report by outcome %v, unverified %d; want sandbox 1, delivered 0, unverified 0", r.ByOutcome, r.Unverified)
	}
	if text := r.Text(); !strings.Contains(text, "1 message(s) went to the sandbox provider and were NOT sent.") {
		t.Errorf("report text does not say the sandbox sent nothing:\n%s", text)
	}
}

// TestSandboxFallbackIsNotDelivered: when a real provider fails and a
// sandbox fallback takes the message, the audit says "sandbox": the first
// attempt refused, the second sent nothing.
func TestSandboxFallbackIsNotDelivered(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r received) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"messages":[],"error":{"code":1,"description":"down"}}`)
	})
	cfg := routeConfig(fp.CAFile(t), "one", "clickatell-one", fp.URL("/v1/message"), `fallback = "try"`) + `
[[route]]
name = "try"
inbound = "clickatell-http"
provider = "sandbox"
`
	p := startPostern(t, cfg, env())
	status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "x"))
	lines := auditLines(t, p)
	if status != http.StatusOK || len(lines) != 1 || lines[0]["outcome"] != "sandbox" {
		t.Fatalf("got %d %q, audit %v; want 200 and outcome sandbox", status, body, lines)
	}
	att, _ := lines[0]["attempts"].([]any)
	if len(att) < 2 || att[0].(map[string]any)["outcome"] != "refused" || att[len(att)-1].(map[string]any)["outcome"] != "sandbox" {
		t.Errorf("attempts %v, want the provider refused, then the sandbox", att)
	}
}

// TestUpstreamUserAgent: provider requests say who sends them.
func TestUpstreamUserAgent(t *testing.T) {
	for _, tc := range []struct{ ua, want string }{
		{deliver.UserAgent("v1.2.3"), "postern/v1.2.3"},
		{"", "postern"},
	} {
		fp := newFakeProvider(t, oneAPIReply())
		p := startPosternWith(t, routeConfig(fp.CAFile(t), "one", "clickatell-one", fp.URL("/v1/message"), ""), env(), proxy.Options{UserAgent: tc.ua})
		if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "hi")); status != http.StatusOK {
			t.Fatalf("send: %d %q", status, body)
		}
		reqs := fp.Requests()
		if len(reqs) != 1 || reqs[0].Header.Get("User-Agent") != tc.want {
			t.Errorf("provider saw User-Agent %q, want %q", reqs[0].Header.Get("User-Agent"), tc.want)
		}
	}
}
