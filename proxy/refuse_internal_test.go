package proxy

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/rewrite"
)

// TestRefusalMapping: each refusal's status, reply body, audit outcome,
// legacy code, reason and metrics label, as refuse.go decides them.
func TestRefusalMapping(t *testing.T) {
	dialect := rewrite.ClickatellHTTP{}
	redact := func(s string) string { return strings.ReplaceAll(s, "SECRET", "<redacted>") }
	for _, c := range []struct {
		name                   string
		ref                    *refusal
		status                 int
		body, code, reason     string
		label, outcome, header string
	}{
		{"client", refuseClient, 403, "Forbidden: client not allowed\n", "", "client not in allow_clients", metrics.RefusalClientNotAllowed, "refused", ""},
		{"proxy auth", refuseProxyAuth("proxy authentication failed"), 407, "Proxy authentication required\n", "",
			"proxy authentication failed", metrics.RefusalAuthFailed, "refused", proxyAuthRealm},
		{"per_client", refusePerClient, 429, "ERR: 130, Maximum MT limit exceeded\n", "", "per_client limit reached", metrics.RefusalRateLimited, "refused", ""},
		{"scheme", refuseScheme, 400, unreadableReply.Body, rewrite.CodeMissingParams, "absolute-form URL scheme is not http", metrics.RefusalBadRequest, "refused", ""},
		{"no route", refuseNoRoute, 403, "Forbidden: no route matches this request\n", "", "no route matches", metrics.RefusalNoRoute, "refused", ""},
		{"connect", refuseConnect, 403, "Forbidden: postern does not tunnel CONNECT\n", "", "CONNECT is not allowed", metrics.RefusalConnect, "refused", ""},
		{"legacy auth", refuseLegacyAuth(), 403, "ERR: 001, Authentication failed\n", rewrite.CodeAuthFailed,
			"Authentication failed: legacy credentials do not match the route", metrics.RefusalAuthFailed, "refused", ""},
		{"destination", refuseDestination("premium-rate number refused"), 403, "ERR: 114, Cannot route message\n", rewrite.CodeCannotRoute,
			"Cannot route message: premium-rate number refused", metrics.RefusalDestination, "refused", ""},
		{"rate limit", refuseRateLimit(metrics.LimitDailyMax), 429, "ERR: 130, Maximum MT limit exceeded\n", rewrite.CodeThrottled,
			"Maximum MT limit exceeded: daily_max limit reached", metrics.RefusalRateLimited, "refused", ""},
		{"busy", refuseBusy(), 503, "ERR: 901, Too many messages in flight, message not sent\n", rewrite.CodeInternal,
			"Too many messages in flight, message not sent: max_concurrent_upstream busy for upstream_queue_wait", metrics.RefusalBusy, "refused", ""},
		{"store down", refuseStoreDown(), 503, "ERR: 901, Shared store unavailable, message not sent\n", rewrite.CodeInternal,
			"Shared store unavailable, message not sent: [cluster] store unavailable and on_store_error is refuse", metrics.RefusalStore, "refused", ""},
		{"store down before routing", refuseStoreDownEarly, 503, "ERR: 901, Shared store unavailable, message not sent\n", rewrite.CodeInternal,
			"Shared store unavailable, message not sent: [cluster] store unavailable and on_store_error is refuse", metrics.RefusalStore, "refused", ""},
		{"bad request, redacted", refuseRequest(&rewrite.Error{Status: 400, Code: rewrite.CodeMissingParams, Description: "Invalid or missing parameters",
			Outcome: rewrite.Refused, Cause: errors.New("quoting SECRET")}), 400, "ERR: 101, Invalid or missing parameters\n", rewrite.CodeMissingParams,
			"Invalid or missing parameters: quoting <redacted>", "", "refused", ""},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		a := &audit.Record{}
		resp := c.ref.answer(r, a, dialect, redact)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != c.status || string(body) != c.body || resp.Header.Get("Proxy-Authenticate") != c.header {
			t.Errorf("%s: answer got %d %q (Proxy-Authenticate %q), want %d %q (%q)", c.name, resp.StatusCode, body,
				resp.Header.Get("Proxy-Authenticate"), c.status, c.body, c.header)
		}
		if a.Status != c.status || a.Code != c.code || a.Reason != c.reason || a.Refusal != c.label || a.Outcome != c.outcome {
			t.Errorf("%s: audit got %+v, want status %d code %q reason %q label %q outcome %q", c.name, a, c.status, c.code, c.reason, c.label, c.outcome)
		}
	}
}
