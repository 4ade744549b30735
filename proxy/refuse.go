package proxy

import (
	"errors"
	"net/http"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/rewrite"
)

// refusal is a request postern answers itself without sending anything:
// this file is the one place that decides, for every such answer, the
// status, the legacy code, the reply body, the audit reason and the
// metrics label (as httputil.ReverseProxy ends every failure in one
// ErrorHandler).
//
// Before a route is found nothing tells which legacy dialect the client
// speaks, so the answer is plain text; after, the route's dialect answers
// err in the legacy format ISE logs.
type refusal struct {
	// label is the postern_refusals_total reason (metrics.Refusal*); ""
	// when the legacy request itself was unacceptable, which the metrics
	// count as bad_request.
	label string

	// Before routing:
	status       int
	code         string // legacy code for the audit line, when any
	reason       string // audit reason, fixed text
	body         string
	authenticate bool // ask for proxy credentials (Proxy-Authenticate)

	// After routing: what the dialect answers; its description and cause
	// are the (redacted) audit reason.
	err *rewrite.Error
}

// throttledBody is the legacy throttling error, answered with 429 for every
// rate limit.
const throttledBody = "ERR: " + rewrite.CodeThrottled + ", Maximum MT limit exceeded\n"

// unreadableReply answers a request postern cannot read or will not take
// as written, in the legacy format ISE logs.
var unreadableReply = rewrite.ClickatellHTTP{}.ReplyError(rewrite.BadRequest(rewrite.CodeMissingParams, "Invalid or missing parameters"))

// proxyAuthRealm is what a client is told to authenticate for.
const proxyAuthRealm = `Basic realm="postern", charset="UTF-8"`

// Refusals before a route is found.
var (
	refuseClient = &refusal{label: metrics.RefusalClientNotAllowed, status: http.StatusForbidden,
		reason: "client not in allow_clients", body: "Forbidden: client not allowed\n"}
	refusePerClient = &refusal{label: metrics.RefusalRateLimited, status: http.StatusTooManyRequests,
		reason: "per_client limit reached", body: throttledBody}
	refuseScheme = &refusal{label: metrics.RefusalBadRequest, status: unreadableReply.Status, code: rewrite.CodeMissingParams,
		reason: "absolute-form URL scheme is not http", body: unreadableReply.Body}
	refuseNoRoute = &refusal{label: metrics.RefusalNoRoute, status: http.StatusForbidden,
		reason: "no route matches", body: "Forbidden: no route matches this request\n"}
	refuseConnect = &refusal{label: metrics.RefusalConnect, status: http.StatusForbidden,
		reason: "CONNECT is not allowed", body: "Forbidden: postern does not tunnel CONNECT\n"}
	refuseConnectOutsideCA = &refusal{label: metrics.RefusalConnect, status: http.StatusForbidden,
		reason: "host outside the interception CA's name constraints",
		body:   "Forbidden: postern's interception CA does not cover this host\n"}
)

// refuseProxyAuth asks for proxy credentials; reason says what was wrong
// with the ones given (guard.CheckProxyAuth).
func refuseProxyAuth(reason string) *refusal {
	return &refusal{label: metrics.RefusalAuthFailed, status: http.StatusProxyAuthRequired, reason: reason,
		body: "Proxy authentication required\n", authenticate: true}
}

// refuseInTunnel answers a request inside an intercepted tunnel that
// postern will not take (see refuseTunnelRequest).
func refuseInTunnel(reason string) *refusal {
	return &refusal{label: metrics.RefusalBadRequest, status: unreadableReply.Status, code: rewrite.CodeMissingParams,
		reason: reason, body: unreadableReply.Body}
}

// Refusals after routing, answered in the route's legacy format.

// refuseRequest answers a legacy request that cannot be taken as written
// (unreadable, too large, missing parameters, too many recipients or
// parts).
func refuseRequest(e *rewrite.Error) *refusal { return &refusal{err: e} }

func refuseLegacyAuth() *refusal {
	return &refusal{label: metrics.RefusalAuthFailed, err: &rewrite.Error{Status: http.StatusForbidden, Code: rewrite.CodeAuthFailed,
		Description: "Authentication failed", Outcome: rewrite.Refused, Cause: errors.New("legacy credentials do not match the route")}}
}

// refuseDestination refuses a recipient the destination guard rejects.
func refuseDestination(reason string) *refusal {
	return &refusal{label: metrics.RefusalDestination, err: &rewrite.Error{Status: http.StatusForbidden, Code: rewrite.CodeCannotRoute,
		Description: "Cannot route message", Outcome: rewrite.Refused, Cause: errors.New(reason)}}
}

// refuseRateLimit refuses a message over per_number or daily_max.
func refuseRateLimit(limit string) *refusal {
	return &refusal{label: metrics.RefusalRateLimited, err: &rewrite.Error{Status: http.StatusTooManyRequests, Code: rewrite.CodeThrottled,
		Description: "Maximum MT limit exceeded", Outcome: rewrite.Refused, Cause: errors.New(limit + " limit reached")}}
}

func refuseBusy() *refusal {
	return &refusal{label: metrics.RefusalBusy, err: &rewrite.Error{Status: http.StatusServiceUnavailable, Code: rewrite.CodeInternal,
		Description: "Too many messages in flight, message not sent", Outcome: rewrite.Refused,
		Cause: errors.New("max_concurrent_upstream busy for upstream_queue_wait")}}
}

// storeDownText is the reply while the [cluster] store is unavailable
// under on_store_error = "refuse", before a route is known (per_client).
const storeDownText = "ERR: " + rewrite.CodeInternal + ", Shared store unavailable, message not sent\n"

// refuseStoreDownEarly is refuseStoreDown before routing (per_client),
// where no dialect answers yet: the same legacy line as plain text.
var refuseStoreDownEarly = &refusal{label: metrics.RefusalStore, status: http.StatusServiceUnavailable, code: rewrite.CodeInternal,
	reason: "Shared store unavailable, message not sent: [cluster] store unavailable and on_store_error is refuse", body: storeDownText}

// refuseStoreDown refuses a message while the [cluster] store is
// unavailable and on_store_error is "refuse".
func refuseStoreDown() *refusal {
	return &refusal{label: metrics.RefusalStore, err: &rewrite.Error{Status: http.StatusServiceUnavailable, Code: rewrite.CodeInternal,
		Description: "Shared store unavailable, message not sent", Outcome: rewrite.Refused,
		Cause: errors.New("[cluster] store unavailable and on_store_error is refuse")}}
}

// answer builds the reply to r (a routed refusal in dialect's format) and
// records the refusal in a; redact cleans a routed refusal's cause, which
// may quote a provider or a URL.
func (ref *refusal) answer(r *http.Request, a *audit.Record, dialect rewrite.Dialect, redact func(string) string) *http.Response {
	var resp *http.Response
	if ref.err != nil {
		resp = replyResponse(r, dialect.ReplyError(ref.err))
	} else {
		resp = textResponse(r, ref.status, ref.body)
		if ref.authenticate {
			resp.Header.Set("Proxy-Authenticate", proxyAuthRealm)
		}
	}
	ref.record(a, resp.StatusCode, redact)
	return resp
}

// record fills a's outcome from the refusal answered with status.
func (ref *refusal) record(a *audit.Record, status int, redact func(string) string) {
	a.Refusal, a.Status = ref.label, status
	if ref.err == nil {
		a.Outcome, a.Reason = "refused", ref.reason
		if ref.code != "" {
			a.Code = ref.code
		}
		return
	}
	e := ref.err
	a.Outcome, a.Code, a.Reason = e.Outcome.String(), e.Code, redact(errorReason(e))
}

// errorReason is an error's description and cause, as the audit line
// states it.
func errorReason(e *rewrite.Error) string {
	if e.Cause == nil {
		return e.Description
	}
	return e.Description + ": " + e.Cause.Error()
}
