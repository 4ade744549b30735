package proxy_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// failoverConfig: the primary route (clickatell-one at primaryURL) falls
// over to "backup", a fallback-only Twilio route.
func failoverConfig(primaryCA, primaryURL, backupCA, backupURL, server string) string {
	return fmt.Sprintf(`%s
[trust]
ca_files = [%q, %q]

[[route]]
name = "primary"
match_host = "api.clickatell.com"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = %q
token = "env:TEST_TOKEN"
fallback = "backup"

[[route]]
name = "backup"
provider = "twilio"
endpoint = %q
token = "env:TEST_TOKEN"
account_sid = %q
from = "+15550001111"
`, server, primaryCA, backupCA, primaryURL, backupURL, testAccountSID)
}

var twilioOK = canned{201, `{"sid":"` + testMessageSID + `","status":"queued"}`}

// TestFailover: when the primary certainly did not take the message, the
// same message goes to the fallback once; when it may have, it does not.
func TestFailover(t *testing.T) {
	for _, tc := range []struct {
		name          string
		primary       *canned // nil: nothing listens
		backup        canned
		server        string
		wantStatus    int
		wantBody      string
		wantBackup    int      // requests the fallback received
		wantAttempts  string   // audit "attempts" JSON
		wantAuditBits []string // more audit substrings
	}{
		{
			// Retries of the refused connection are retry_test.go's subject.
			name: "primary refuses connections", backup: twilioOK, server: "[server]\nupstream_retries = 0\n",
			wantStatus: 200, wantBody: "ID: " + testMessageSID + "\n", wantBackup: 1,
			wantAttempts: `"attempts":[{"route":"primary","provider":"clickatell-one","outcome":"refused","code":"901"},{"route":"backup","provider":"twilio","outcome":"delivered"}]`,
		},
		{
			name: "primary 503 with its error body", primary: &canned{503, `{"messages":[],"error":{"code":19,"description":"Service unavailable, retry"}}`}, backup: twilioOK,
			wantStatus: 200, wantBody: "ID: " + testMessageSID + "\n", wantBackup: 1,
			wantAttempts: `"attempts":[{"route":"primary","provider":"clickatell-one","outcome":"refused","code":"901"},{"route":"backup","provider":"twilio","outcome":"delivered"}]`,
		},
		{
			name: "primary throttles with One API code 43", primary: &canned{400, `{"messages":[],"error":{"code":43,"description":"Rate limit"}}`}, backup: twilioOK,
			wantStatus: 200, wantBody: "ID: " + testMessageSID + "\n", wantBackup: 1,
			wantAttempts: `"attempts":[{"route":"primary","provider":"clickatell-one","outcome":"refused","code":"130"},{"route":"backup","provider":"twilio","outcome":"delivered"}]`,
		},
		{
			name: "fallback also failing", primary: &canned{503, `{"messages":[],"error":{"code":19,"description":"Service unavailable"}}`},
			backup:     canned{503, `{"code":20503,"message":"Service Unavailable","status":503}`},
			wantStatus: 502, wantBody: "ERR: 901, Upstream error\n", wantBackup: 1,
			wantAttempts:  `"attempts":[{"route":"primary","provider":"clickatell-one","outcome":"refused","code":"901"},{"route":"backup","provider":"twilio","outcome":"refused","code":"901"}]`,
			wantAuditBits: []string{`"outcome":"refused"`},
		},
		{
			name: "invalid number is not failed over", primary: &canned{400, `{"messages":[{"apiMessageId":null,"accepted":false,"to":"15551234567","error":{"code":25,"description":"Invalid recipient"}}],"error":null}`}, backup: twilioOK,
			wantStatus: 502, wantBody: "ERR: 105, Invalid destination address\n", wantBackup: 0,
			wantAttempts: `"attempts":[{"route":"primary","provider":"clickatell-one","outcome":"refused","code":"105"}]`,
		},
		{
			name: "bare 502 from something in between is not failed over", primary: &canned{502, `<html>Bad Gateway</html>`}, backup: twilioOK,
			wantStatus: 502, wantBody: "ERR: 901, Upstream error\n", wantBackup: 0,
			wantAttempts: `"attempts":[{"route":"primary","provider":"clickatell-one","outcome":"refused","code":"901"}]`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary := newFakeProvider(t, oneAPIReply())
			if tc.primary != nil {
				primary = newFakeProvider(t, reply(*tc.primary))
			}
			primaryCA, primaryURL := primary.CAFile(t), primary.URL("/v1/message")
			if tc.primary == nil {
				primary.Srv.Close()
			}
			backup := newFakeProvider(t, reply(tc.backup))
			p := startPostern(t, failoverConfig(primaryCA, primaryURL, backup.CAFile(t), backup.URL("/2010-04-01/Accounts/"+testAccountSID+"/Messages.json"), tc.server), env())
			status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "Your password is abc123"))
			if status != tc.wantStatus || body != tc.wantBody {
				t.Errorf("ISE got %d %q, want %d %q", status, body, tc.wantStatus, tc.wantBody)
			}
			got := backup.Requests()
			if len(got) != tc.wantBackup {
				t.Fatalf("fallback got %d requests, want %d", len(got), tc.wantBackup)
			}
			for _, r := range got {
				if err := validateTwilioRequest(r); err != nil {
					t.Error(err)
				}
				if !strings.Contains(string(r.Body), "Body=Your+password+is+abc123") {
					t.Errorf("fallback got body %s, want the same text", r.Body)
				}
			}
			a := p.Audit.String()
			for _, w := range append([]string{tc.wantAttempts, `"route":"primary"`}, tc.wantAuditBits...) {
				if !strings.Contains(a, w) {
					t.Errorf("audit lacks %s:\n%s", w, a)
				}
			}
		})
	}
}

// TestNoFailoverWhenOutcomeUnknown: the primary took the request and never
// answered before request_timeout. It may have sent the SMS, so the fallback
// is not tried and ISE gets 504 "outcome unknown".
func TestNoFailoverWhenOutcomeUnknown(t *testing.T) {
	release := make(chan struct{})
	primary := newFakeProvider(t, func(http.ResponseWriter, received) { <-release })
	t.Cleanup(func() { close(release) })
	backup := newFakeProvider(t, reply(twilioOK))
	cfg := failoverConfig(primary.CAFile(t), primary.URL("/v1/message"), backup.CAFile(t),
		backup.URL("/2010-04-01/Accounts/"+testAccountSID+"/Messages.json"), "[server]\nrequest_timeout = \"300ms\"")
	p := startPostern(t, cfg, env())
	status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "Your password is abc123"))
	if status != http.StatusGatewayTimeout || body != "ERR: 901, Upstream timeout, outcome unknown\n" {
		t.Errorf("ISE got %d %q, want 504 outcome unknown", status, body)
	}
	if n := len(primary.Requests()); n != 1 {
		t.Errorf("primary got %d requests, want 1", n)
	}
	if n := len(backup.Requests()); n != 0 {
		t.Errorf("fallback got %d requests, want none: the guest could get two passwords", n)
	}
	if a := p.Audit.String(); !strings.Contains(a, `"outcome":"unknown"`) ||
		!strings.Contains(a, `"attempts":[{"route":"primary","provider":"clickatell-one","outcome":"unknown","code":"901"}]`) {
		t.Errorf("audit: want one unknown attempt:\n%s", a)
	}
}

// TestNoFailoverAfterResetOnceSent: the primary read the whole request and
// dropped the connection. It may have accepted, so no failover.
func TestNoFailoverAfterResetOnceSent(t *testing.T) {
	primary := newFakeProvider(t, func(w http.ResponseWriter, _ received) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	backup := newFakeProvider(t, reply(twilioOK))
	cfg := failoverConfig(primary.CAFile(t), primary.URL("/v1/message"), backup.CAFile(t),
		backup.URL("/2010-04-01/Accounts/"+testAccountSID+"/Messages.json"), "")
	p := startPostern(t, cfg, env())
	status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "Your password is abc123"))
	if status != http.StatusBadGateway || body != "ERR: 901, Upstream connection failed, outcome unknown\n" {
		t.Errorf("ISE got %d %q, want 502 outcome unknown", status, body)
	}
	if n := len(backup.Requests()); n != 0 {
		t.Errorf("fallback got %d requests, want none", n)
	}
}
