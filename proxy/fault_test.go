package proxy_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/trust"
	"github.com/postern/postern/trust/trusttest"
)

// The fault suite: every way the network and the provider fail ends in
// exactly one of three outcomes — delivered, refused, unknown — and the
// provider's ledger, ISE's reply and the audit line agree on which. Retries
// happen only where the provider certainly did not get the message.

const faultText = "Your password is Zx9-fault"

// always and then build request scripts: the same fault every time, or
// first one fault and afterwards another.
func always(f fault) func(string, int) fault { return func(string, int) fault { return f } }

func then(first, rest fault) func(string, int) fault {
	return func(_ string, n int) fault {
		if n == 0 {
			return first
		}
		return rest
	}
}

// TestProviderFaults: one scenario per provider fault, each checked on the
// ledger (what the provider received and did), the reply ISE got and the
// audit line (outcome and every attempt, retries included).
func TestProviderFaults(t *testing.T) {
	const (
		notSent      = "ERR: 901, Upstream unreachable, message not sent\n"
		upstreamErr  = "ERR: 901, Upstream error\n"
		throttled    = "ERR: 130, Maximum MT limit exceeded\n"
		unreadable   = "ERR: 901, Provider reply unreadable, outcome unknown\n"
		unclear      = "ERR: 901, Upstream reply unclear, outcome unknown\n"
		brokeAfter   = "ERR: 901, Upstream connection failed, outcome unknown\n"
		timedOutSent = "ERR: 901, Upstream timeout, outcome unknown\n"
		timedOutNot  = "ERR: 901, Upstream timeout, message not sent\n"
	)
	var trail faultTrail // every scenario's audit line, for the report (auditreport_test.go)
	defer trail.check(t)
	for _, tc := range []struct {
		name    string
		script  func(string, int) fault
		conn    func(int) connFault
		refuse  func(int) bool // which dials are refused
		server  string         // extra [server] keys
		status  int
		body    string // "" = a delivered "ID: <ledger id>"
		outcome string
		ledger  []fault         // what the provider did, in order
		retries []string        // audit attempts' retry reasons, one per attempt
		waits   []time.Duration // retry waits
	}{
		{name: "refuses every connection", refuse: func(int) bool { return true },
			status: 502, body: notSent, outcome: "refused",
			retries: []string{"not sent", "not sent", ""}, waits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}},
		{name: "refuses the first connection", refuse: func(i int) bool { return i == 0 },
			status: 200, outcome: "delivered", ledger: []fault{faultNone},
			retries: []string{"not sent", ""}, waits: []time.Duration{100 * time.Millisecond}},
		{name: "resets after accepting, once", conn: func(i int) connFault { return []connFault{connReset, connServe}[min(i, 1)] },
			status: 200, outcome: "delivered", ledger: []fault{faultNone},
			retries: []string{"not sent", ""}, waits: []time.Duration{100 * time.Millisecond}},
		{name: "resets after accepting, always", conn: func(int) connFault { return connReset },
			status: 502, body: notSent, outcome: "refused",
			retries: []string{"not sent", "not sent", ""}, waits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond}},
		{name: "accepts TLS then stalls", conn: func(int) connFault { return connStall }, server: `request_timeout = "2s"`,
			status: 504, body: timedOutNot, outcome: "refused", retries: []string{""}},
		{name: "stalls after the request is written: unknown, no retry", script: always(faultStallAfterRead), server: `request_timeout = "2s"`,
			status: 504, body: timedOutSent, outcome: "unknown", ledger: []fault{faultStallAfterRead}, retries: []string{""}},
		{name: "resets after reading the request: unknown, no retry", script: always(faultResetAfterRead),
			status: 502, body: brokeAfter, outcome: "unknown", ledger: []fault{faultResetAfterRead}, retries: []string{""}},
		{name: "500", script: always(fault500),
			status: 502, body: upstreamErr, outcome: "refused", ledger: []fault{fault500}, retries: []string{""}},
		{name: "502 from something in between", script: always(fault502Bare),
			status: 502, body: upstreamErr, outcome: "refused", ledger: []fault{fault502Bare}, retries: []string{""}},
		{name: "503 without Retry-After is not retried", script: always(fault503),
			status: 502, body: upstreamErr, outcome: "refused", ledger: []fault{fault503}, retries: []string{""}},
		{name: "503 with Retry-After, then accepted", script: then(fault503RetryAfter, faultNone),
			status: 200, outcome: "delivered", ledger: []fault{fault503RetryAfter, faultNone},
			retries: []string{"HTTP 503 Retry-After", ""}, waits: []time.Duration{time.Second}},
		{name: "503 with Retry-After every time: bounded", script: always(fault503RetryAfter),
			status: 502, body: upstreamErr, outcome: "refused", ledger: []fault{fault503RetryAfter, fault503RetryAfter, fault503RetryAfter},
			retries: []string{"HTTP 503 Retry-After", "HTTP 503 Retry-After", ""}, waits: []time.Duration{time.Second, time.Second}},
		{name: "429 without Retry-After is not retried", script: always(fault429),
			status: 502, body: throttled, outcome: "refused", ledger: []fault{fault429}, retries: []string{""}},
		{name: "429 with Retry-After, then accepted", script: then(fault429RetryAfter, faultNone),
			status: 200, outcome: "delivered", ledger: []fault{fault429RetryAfter, faultNone},
			retries: []string{"HTTP 429 Retry-After", ""}, waits: []time.Duration{time.Second}},
		{name: "429 with Retry-After beyond the deadline is not retried", script: always(fault429RetryAfterLong),
			status: 502, body: throttled, outcome: "refused", ledger: []fault{fault429RetryAfterLong}, retries: []string{""}},
		{name: "retries off", script: always(fault429RetryAfter), server: "upstream_retries = 0",
			status: 502, body: throttled, outcome: "refused", ledger: []fault{fault429RetryAfter}, retries: []string{""}},
		{name: "truncated body", script: always(faultTruncated),
			status: 502, body: unreadable, outcome: "unknown", ledger: []fault{faultTruncated}, retries: []string{""}},
		{name: "not JSON", script: always(faultNotJSON),
			status: 502, body: unclear, outcome: "unknown", ledger: []fault{faultNotJSON}, retries: []string{""}},
		{name: "200 with accepted:false", script: always(faultRejected),
			status: 502, body: "ERR: 105, Invalid destination address\n", outcome: "refused", ledger: []fault{faultRejected}, retries: []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFaultProvider(t, tc.script, func(f *faultProvider) { f.conn = tc.conn })
			var sleeps sleepLog
			// The injected backoff: 200 ms first step halved (jitter 0).
			p := startPosternWith(t, faultConfig(fp, fp.CAFile(t), tc.server), env(), faultOptions(newRefusingDialer(t, tc.refuse), &sleeps))
			status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", faultText))

			ledger := fp.entries()
			var did []fault
			for _, e := range ledger {
				if e.Text != faultText || e.To != "15551234567" {
					t.Errorf("provider got text %q to %q, want the message", e.Text, e.To)
				}
				did = append(did, e.Fault)
			}
			if !slices.Equal(did, tc.ledger) {
				t.Errorf("ledger: provider did %v, want %v", did, tc.ledger)
			}
			want := tc.body
			if want == "" {
				if len(ledger) == 0 {
					t.Fatal("delivered but the ledger is empty")
				}
				want = "ID: " + ledger[len(ledger)-1].ID + "\n"
			}
			if status != tc.status || body != want {
				t.Errorf("ISE got %d %q, want %d %q", status, body, tc.status, want)
			}
			lines := parseAudit(t, p.Audit.String())
			if len(lines) != 1 {
				t.Fatalf("audit: %d lines, want 1:\n%s", len(lines), p.Audit)
			}
			a := lines[0]
			if a.Outcome != tc.outcome || a.Status != tc.status {
				t.Errorf("audit outcome %q status %d, want %q %d", a.Outcome, a.Status, tc.outcome, tc.status)
			}
			if tc.outcome == "delivered" && (len(a.IDs) != 1 || a.IDs[0] != ledger[len(ledger)-1].ID) {
				t.Errorf("audit ids %v, want the ledger's %s", a.IDs, ledger[len(ledger)-1].ID)
			}
			var retries []string
			for _, at := range a.Attempts {
				retries = append(retries, at.Retry)
			}
			if !slices.Equal(retries, tc.retries) {
				t.Errorf("audit attempts' retry reasons %q, want %q", retries, tc.retries)
			}
			if got := sleeps.all(); !slices.Equal(got, tc.waits) {
				t.Errorf("retry waits %v, want %v", got, tc.waits)
			}
			mustNotContain(t, "audit", p.Audit.String(), faultText)
			trail.add(p.Audit.String(), tc.outcome)
		})
	}
}

// TestCertificateFaultsAreNeverRetried: a provider serving an expired,
// wrong-host or untrusted certificate gets nothing — not even a retry — and
// ISE and the audit line say why.
func TestCertificateFaultsAreNeverRetried(t *testing.T) {
	for _, tc := range certFaults(t) {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProviderTLS(t, tc.cert, oneAPIReply())
			var sleeps sleepLog
			cfg := strings.Replace(trustConfig(tc.caFile, fp.URL("/v1/message"), ""), "[[route]]", "[limits]\nper_number = \"off\"\n\n[[route]]", 1)
			p := startPosternWith(t, cfg, env(), faultOptions(nil, &sleeps))
			status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", faultText))
			want := "ERR: 901, Upstream TLS verification failed: " + tc.reason + "\n"
			if status != http.StatusBadGateway || body != want {
				t.Errorf("ISE got %d %q, want 502 %q", status, body, want)
			}
			if n := len(fp.Requests()); n != 0 {
				t.Errorf("provider got %d requests, want 0", n)
			}
			a := parseAudit(t, p.Audit.String())
			if len(a) != 1 || a[0].Outcome != "refused" || len(a[0].Attempts) != 1 || a[0].Attempts[0].Retry != "" {
				t.Errorf("audit: got %+v, want one refused attempt, not retried", a)
			}
			if w := sleeps.all(); len(w) != 0 {
				t.Errorf("retry waits %v, want none", w)
			}
		})
	}
}

// TestSlowProviderDoesNotHoldOthers: one request in a hundred hangs at the
// provider (its p99); the other 99 are answered while it hangs, and then it
// is delivered too.
func TestSlowProviderDoesNotHoldOthers(t *testing.T) {
	const n = 100
	slow := fmt.Sprintf("slow message %d", 0)
	fp := newFaultProvider(t, func(text string, _ int) fault {
		if text == slow {
			return faultGate
		}
		return faultNone
	})
	p := startPosternWith(t, faultConfig(fp, fp.CAFile(t), ""), env(), faultOptions(nil, &sleepLog{}))
	replies := make(chan string, n)
	go func() {
		status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", slow))
		replies <- fmt.Sprint(status, " ", body)
	}()
	<-fp.gated // the slow one is at the provider
	for i := 1; i < n; i++ {
		go func() {
			status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", fmt.Sprintf("slow message %d", i)))
			replies <- fmt.Sprint(status, " ", body)
		}()
	}
	for i := 1; i < n; i++ {
		if r := <-replies; !strings.HasPrefix(r, "200 ID: ") {
			t.Errorf("fast request answered %q while the slow one hangs, want 200 ID", r)
		}
	}
	fp.release()
	if r := <-replies; !strings.HasPrefix(r, "200 ID: ") {
		t.Errorf("slow request answered %q, want 200 ID", r)
	}
	checkLedgerOnce(t, fp, n)
}

// checkLedgerOnce: the provider accepted exactly n messages, each text once.
func checkLedgerOnce(t *testing.T, fp *faultProvider, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, e := range fp.entries() {
		if e.Fault.acceptedBy() {
			seen[e.Text]++
		}
	}
	if len(seen) != n {
		t.Errorf("provider accepted %d distinct messages, want %d", len(seen), n)
	}
	for text, c := range seen {
		if c != 1 {
			t.Errorf("provider accepted %q %d times, want once", text, c)
		}
	}
}

type certFault struct {
	name, caFile, reason string
	cert                 tls.Certificate
}

func certFaults(t *testing.T) []certFault {
	root := trusttest.NewCA(t)
	caFile := root.WritePEM(t, t.TempDir())
	past := time.Now().Add(-48 * time.Hour)
	return []certFault{
		{"expired", caFile, trust.ReasonExpired, root.Leaf(t, trusttest.LeafOptions{NotBefore: past, NotAfter: past.Add(time.Hour)})},
		{"wrong host", caFile, trust.ReasonHostname, root.Leaf(t, trusttest.LeafOptions{DNSNames: []string{"sms.example.org"}})},
		{"untrusted", caFile, trust.ReasonUntrusted, trusttest.NewCA(t).Leaf(t, trusttest.LeafOptions{})},
	}
}

// scriptedReply answers the n-th request (0-based) with replies[n], the last
// one from then on; a reply's retryAfter, when set, is sent as Retry-After.
type scriptedReply struct {
	canned
	retryAfter string
}

func scripted(replies ...scriptedReply) func(http.ResponseWriter, received) {
	var n atomic.Int64
	return func(w http.ResponseWriter, _ received) {
		r := replies[min(int(n.Add(1)-1), len(replies)-1)]
		if r.retryAfter != "" {
			w.Header().Set("Retry-After", r.retryAfter)
		}
		reply(r.canned)(w, received{})
	}
}

// TestRetryAfterPerProvider: whether a 429 or 503 with Retry-After is
// retried is each provider's own rule (docs/reliability.md: Retries). For twilio and
// template a 503 is not: Twilio does not document it as "not processed",
// and a template gateway's 503 may come from a front end after its back end
// took the message; sending again could text the guest twice. A 429 is
// retried (Twilio 20429 and RFC 6585 both say the request was rejected),
// and without Retry-After it is not.
func TestRetryAfterPerProvider(t *testing.T) {
	twilioPath := "/2010-04-01/Accounts/" + testAccountSID + "/Messages.json"
	providers := []struct {
		name, path, extra   string
		ok, throttled, down canned
		id                  string
	}{
		{"twilio", twilioPath, `account_sid = "` + testAccountSID + `"` + "\nfrom = \"+1 555 000 1111\"",
			canned{201, `{"sid":"` + testMessageSID + `","status":"queued","error_code":null,"error_message":null}`},
			canned{429, `{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}`},
			canned{503, `{"code":20503,"message":"Service Unavailable","more_info":"https://www.twilio.com/docs/errors/20503","status":503}`},
			testMessageSID},
		{"template", "/xms/v1/plan/batches", sinchTemplate,
			canned{201, `{"id":"01FC66621XXXXX119Z8PMV1QPQ"}`},
			canned{429, `{"code":"too_many_requests","text":"Slow down"}`},
			canned{503, `{"code":"unavailable","text":"Service unavailable"}`},
			"01FC66621XXXXX119Z8PMV1QPQ"},
	}
	for _, pv := range providers {
		for _, tc := range []struct {
			name     string
			replies  []scriptedReply
			status   int
			body     string // "" = "ID: <pv.id>"
			outcome  string
			requests int
			retries  []string
			waits    []time.Duration
		}{
			{name: "503 with Retry-After is not retried", replies: []scriptedReply{{pv.down, "1"}, {pv.ok, ""}},
				status: 502, body: "ERR: 901, Upstream error\n", outcome: "refused", requests: 1, retries: []string{""}},
			{name: "429 with Retry-After is retried", replies: []scriptedReply{{pv.throttled, "1"}, {pv.ok, ""}},
				status: 200, outcome: "delivered", requests: 2,
				retries: []string{"HTTP 429 Retry-After", ""}, waits: []time.Duration{time.Second}},
			{name: "429 with Retry-After every time: bounded", replies: []scriptedReply{{pv.throttled, "1"}},
				status: 502, body: "ERR: 130, Maximum MT limit exceeded\n", outcome: "refused", requests: 3,
				retries: []string{"HTTP 429 Retry-After", "HTTP 429 Retry-After", ""}, waits: []time.Duration{time.Second, time.Second}},
			{name: "429 without Retry-After is not retried", replies: []scriptedReply{{pv.throttled, ""}, {pv.ok, ""}},
				status: 502, body: "ERR: 130, Maximum MT limit exceeded\n", outcome: "refused", requests: 1, retries: []string{""}},
		} {
			t.Run(pv.name+"/"+tc.name, func(t *testing.T) {
				fp := newFakeProvider(t, scripted(tc.replies...))
				var sleeps sleepLog
				p := startPosternWith(t, routeConfig(fp.CAFile(t), "r", pv.name, fp.URL(pv.path), pv.extra), env(), faultOptions(nil, &sleeps))
				status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", faultText))
				want := tc.body
				if want == "" {
					want = "ID: " + pv.id + "\n"
				}
				if status != tc.status || body != want {
					t.Errorf("ISE got %d %q, want %d %q", status, body, tc.status, want)
				}
				if n := len(fp.Requests()); n != tc.requests {
					t.Errorf("provider got %d requests, want %d", n, tc.requests)
				}
				lines := parseAudit(t, p.Audit.String())
				if len(lines) != 1 {
					t.Fatalf("audit: %d lines, want 1:\n%s", len(lines), p.Audit)
				}
				a := lines[0]
				if a.Outcome != tc.outcome || a.Status != tc.status {
					t.Errorf("audit outcome %q status %d, want %q %d", a.Outcome, a.Status, tc.outcome, tc.status)
				}
				var retries []string
				for _, at := range a.Attempts {
					retries = append(retries, at.Retry)
				}
				if !slices.Equal(retries, tc.retries) {
					t.Errorf("audit attempts' retry reasons %q, want %q", retries, tc.retries)
				}
				if got := sleeps.all(); !slices.Equal(got, tc.waits) {
					t.Errorf("retry waits %v, want %v", got, tc.waits)
				}
			})
		}
	}
}
