package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/trust/trusttest"
)

// sendOne mails text to rcpts over a raw conversation and returns the
// reply to DATA.
func sendOne(t *testing.T, addr string, text string, rcpts ...string) (int, string) {
	t.Helper()
	c := dialSMTP(t, addr)
	c.greet()
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	for _, r := range rcpts {
		c.expect("RCPT TO:<"+r+">", 250, "")
	}
	code, msg := c.data(mailData(text))
	c.expect("QUIT", 221, "")
	return code, msg
}

func oneError(status, code int, desc string) func(w http.ResponseWriter, r received) {
	return func(w http.ResponseWriter, _ received) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"messages":[],"error":{"code":%d,"description":%q}}`, code, desc)
	}
}

// TestSMTP_EveryOutcomeHasItsCode: the reply after DATA is the message's
// outcome: delivered 250; refused and certainly not sent (throttled,
// unreachable, TLS verification failed) 451 so a mailer may retry; refused
// for good (authentication, invalid number) 554; and a provider that
// stalls past request_timeout — the message may have been sent — 554
// 5.0.0 outcome unknown, never a 4xx a mailer would retry.
func TestSMTP_EveryOutcomeHasItsCode(t *testing.T) {
	rcpt := smtpNumber + "@" + smsDomain
	for _, tc := range []struct {
		name     string
		respond  func(w http.ResponseWriter, r received)
		setup    func(t *testing.T, fp *fakeProvider) (caFile, endpoint string)
		code     int
		enhanced string
		text     string
		outcome  string
	}{
		{name: "delivered", respond: oneAPIReply(), code: 250, enhanced: "2.0.0", text: "Ok: one", outcome: "delivered"},
		{name: "throttled", respond: oneError(429, 43, "Rate limit"), code: 451, enhanced: "4.7.1", outcome: "refused"},
		{name: "provider auth failed", respond: oneError(401, 1, "Invalid API key"), code: 554, enhanced: "5.7.0", outcome: "refused"},
		{name: "invalid number", respond: func(w http.ResponseWriter, _ received) {
			w.WriteHeader(202)
			fmt.Fprint(w, `{"messages":[{"apiMessageId":null,"accepted":false,"to":"15551234567","error":{"code":25,"description":"Invalid recipient"}}],"error":null}`)
		}, code: 554, enhanced: "5.1.1", outcome: "refused"},
		{name: "unreachable", respond: oneAPIReply(), setup: func(t *testing.T, fp *fakeProvider) (string, string) {
			ca, u := fp.CAFile(t), fp.URL("/messages")
			fp.Srv.Close()
			return ca, u
		}, code: 451, enhanced: "4.4.1", outcome: "refused"},
		{name: "TLS verification failed", respond: oneAPIReply(), setup: func(t *testing.T, fp *fakeProvider) (string, string) {
			return trusttest.NewCA(t).WritePEM(t, t.TempDir()), fp.URL("/messages")
		}, code: 451, enhanced: "4.7.0", outcome: "refused"},
		{name: "stalls past request_timeout", respond: func(w http.ResponseWriter, r received) {
			time.Sleep(3 * time.Second)
		}, code: 554, enhanced: "5.0.0", text: "outcome unknown", outcome: "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, tc.respond)
			ca, endpoint := fp.CAFile(t), fp.URL("/messages")
			if tc.setup != nil {
				ca, endpoint = tc.setup(t, fp)
			}
			p := startSMTP(t, smtpConfig(ca, endpoint, `request_timeout = "1s"`, "", ""), smtpEnv, nil)
			code, msg := sendOne(t, p.SMTPAddr, "Your code is 1234", rcpt)
			if code != tc.code || !strings.HasPrefix(msg, tc.enhanced) || !strings.Contains(msg, tc.text) {
				t.Fatalf("reply to DATA: %d %s; want %d %s ...%s", code, msg, tc.code, tc.enhanced, tc.text)
			}
			lines := smtpAuditLines(t, p.postern)
			last := lines[len(lines)-1]
			if last["outcome"] != tc.outcome || last["status"] != float64(tc.code) {
				t.Errorf("audit line %v, want outcome %s status %d", last, tc.outcome, tc.code)
			}
			mustNotContain(t, "reply", msg, "1234", testToken)
			mustNotContain(t, "audit", p.Audit.String(), "Your code")
		})
	}
}

// TestSMTP_Failover: the route's provider is unreachable, so the same
// message goes to its fallback, and the client is told 250.
func TestSMTP_Failover(t *testing.T) {
	down := newFakeProvider(t, oneAPIReply())
	ca, downURL := down.CAFile(t), down.URL("/messages")
	down.Srv.Close()
	backup := newFakeProvider(t, oneAPIReply())
	cfg := smtpConfig(ca, downURL, "", "", `fallback = "backup"`) + fmt.Sprintf(`
[[route]]
name = "backup"
provider = "clickatell-one"
endpoint = %q
token = "env:TEST_TOKEN"
`, backup.URL("/messages"))
	cfg = strings.Replace(cfg, fmt.Sprintf("ca_files = [%q]", ca), fmt.Sprintf("ca_files = [%q, %q]", ca, backup.CAFile(t)), 1)
	p := startSMTP(t, cfg, smtpEnv, nil)
	code, msg := sendOne(t, p.SMTPAddr, "failover text", smtpNumber+"@"+smsDomain)
	if code != 250 || !strings.HasPrefix(msg, "2.0.0 Ok: one") {
		t.Fatalf("reply: %d %s", code, msg)
	}
	texts, _ := oneContents(t, backup)
	if len(texts) != 1 || texts[0] != "failover text" {
		t.Fatalf("backup received %q", texts)
	}
	lines := smtpAuditLines(t, p.postern)
	attempts, _ := lines[len(lines)-1]["attempts"].([]any)
	if len(attempts) != 2 {
		t.Errorf("audit attempts %v, want the primary and the backup", lines[len(lines)-1]["attempts"])
	}
}

// TestSMTP_SeveralRecipients: two numbers in one transaction go as one
// message; when the provider takes one and refuses the other, the reply
// is the worst outcome that does not invite a resend (554 5.0.0), and the
// audit line lists both, masked.
func TestSMTP_SeveralRecipients(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, _ received) {
		w.WriteHeader(202)
		fmt.Fprint(w, `{"messages":[{"apiMessageId":"one00000000000000000000000000001","accepted":true,"to":"15551234567","error":null},`+
			`{"apiMessageId":null,"accepted":false,"to":"15551234568","error":{"code":25,"description":"Invalid recipient"}}],"error":null}`)
	})
	p := startSMTP(t, smtpConfig(fp.CAFile(t), fp.URL("/messages"), "", "", ""), smtpEnv, nil)
	code, msg := sendOne(t, p.SMTPAddr, "two of us", "15551234567@"+smsDomain, "15551234568@"+smsDomain)
	if code != 554 || !strings.HasPrefix(msg, "5.0.0") || !strings.Contains(msg, "outcome unknown") {
		t.Fatalf("reply: %d %s, want 554 5.0.0 ... outcome unknown", code, msg)
	}
	if n := len(fp.Requests()); n != 1 {
		t.Fatalf("provider received %d requests, want one message to both", n)
	}
	lines := smtpAuditLines(t, p.postern)
	last := lines[len(lines)-1]
	if to, _ := last["to"].([]any); len(to) != 2 || last["outcome"] != "partial" {
		t.Errorf("audit line %v, want both recipients and outcome partial", last)
	}
	mustNotContain(t, "audit", p.Audit.String(), "15551234567", "15551234568")
}

// TestSMTP_Metrics: SMTP messages are counted by route, provider and
// outcome like HTTP ones, and postern's own SMTP refusals by reason; a
// provider's 451 is not miscounted as a bad request.
func TestSMTP_Metrics(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r received) {
		if strings.Contains(string(r.Body), "throttle me") {
			oneError(429, 43, "Rate limit")(w, r)
			return
		}
		oneAPIReply()(w, r)
	})
	p := startSMTP(t, smtpConfig(fp.CAFile(t), fp.URL("/messages"), "", "", ""), smtpEnv, nil)
	admin := startAdmin(t, p.postern, nil)
	if code, msg := sendOne(t, p.SMTPAddr, "hello", smtpNumber+"@"+smsDomain); code != 250 {
		t.Fatalf("%d %s", code, msg)
	}
	if code, msg := sendOne(t, p.SMTPAddr, "throttle me", smtpNumber+"@"+smsDomain); code != 451 {
		t.Fatalf("%d %s", code, msg)
	}
	c := dialSMTP(t, p.SMTPAddr)
	c.greet()
	c.expect("MAIL FROM:<"+iseSender+">", 250, "")
	c.expect("RCPT TO:<victim@evil.example>", 550, "5.7.1")
	fams := scrape(t, admin)
	for _, m := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"postern_messages_total", map[string]string{"route": "ise-mail", "provider": "clickatell-one", "outcome": "delivered"}, 1},
		{"postern_messages_total", map[string]string{"route": "ise-mail", "provider": "clickatell-one", "outcome": "refused"}, 1},
		{"postern_refusals_total", map[string]string{"reason": "no_route"}, 1},
		{"postern_refusals_total", map[string]string{"reason": "bad_request"}, 0},
	} {
		if v, _ := metricValue(fams, m.name, m.labels); v != m.want {
			t.Errorf("%s%v = %v, want %v", m.name, m.labels, v, m.want)
		}
	}
}
