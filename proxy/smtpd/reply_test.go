package smtpd

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/postern/postern/rewrite"
)

// allReplies is every reply reply.go can give.
func allReplies() []*reply {
	rs := []*reply{replyClientNotAllowed, replyRelayDenied, replyBadMailbox, replyTooManyRcpts, replyMixed, replyNeedTLS,
		replyNeedAuth, replyTooBig, replyBareLF, replyPerClient, replyLegacyAuth, replyBusy, replyRelayUnreachable,
		replyUnknown, replyPartial, replyDelivered([]string{"<provider id>"}),
		replyDestination("x", false), replyDestination("x", true), replyRateLimit("per_number", false), replyRateLimit("per_number", true)}
	codes := []string{rewrite.CodeAuthFailed, rewrite.CodeMissingParams, rewrite.CodeInvalidDestination, rewrite.CodeEmptyMessage,
		rewrite.CodeTooManyParts, rewrite.CodeCannotRoute, rewrite.CodeInvalidUnicode, rewrite.CodeThrottled, rewrite.CodeNoCredit, rewrite.CodeInternal}
	for _, c := range codes {
		rs = append(rs, replyParse(&rewrite.Error{Code: c}))
		for _, failover := range []bool{false, true} {
			rs = append(rs, replyProvider(&rewrite.Error{Code: c, Outcome: rewrite.Refused, Failover: failover}))
		}
	}
	rs = append(rs, replyProvider(&rewrite.Error{Code: rewrite.CodeInternal, Outcome: rewrite.Refused, Failover: true,
		Description: "Upstream TLS verification failed: unknown authority"}))
	return rs
}

// TestRepliesAreDocumented: docs/smtp.md's reply table names every code
// and enhanced code postern answers, with the start of its text.
func TestRepliesAreDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/smtp.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range allReplies() {
		head := fmt.Sprintf("`%d %d.%d.%d %s", r.code, r.ec[0], r.ec[1], r.ec[2], firstWords(r.text, 2))
		if !strings.Contains(string(doc), head) {
			t.Errorf("docs/smtp.md does not document %q", head)
		}
	}
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(n, len(f))], " ")
}

// TestReplyKinds: a retry-safe refusal is 4xx, a refusal for good 5xx,
// and whatever may have been sent is never 4xx.
func TestReplyKinds(t *testing.T) {
	unknown := replyProvider(&rewrite.Error{Code: rewrite.CodeInternal, Outcome: rewrite.Unknown})
	if unknown.code != 554 || unknown.kind() != kindUnknown {
		t.Errorf("unknown outcome: %+v", unknown)
	}
	for _, c := range []string{rewrite.CodeThrottled} {
		if r := replyProvider(&rewrite.Error{Code: c, Outcome: rewrite.Refused}); r.code != 451 {
			t.Errorf("code %s: %d, want 451", c, r.code)
		}
	}
	for _, c := range []string{rewrite.CodeAuthFailed, rewrite.CodeNoCredit, rewrite.CodeInvalidDestination} {
		if r := replyProvider(&rewrite.Error{Code: c, Outcome: rewrite.Refused, Failover: true}); r.code != 554 {
			t.Errorf("code %s: %d, want 554", c, r.code)
		}
	}
}

// TestWorst: several messages get the worst outcome, and anything sent
// beside anything not sent is 554 5.0.0, never a 4xx that would resend the
// part that went out.
func TestWorst(t *testing.T) {
	ok1, ok2 := replyDelivered([]string{"a"}), replyDelivered([]string{"b"})
	temp := replyProvider(&rewrite.Error{Code: rewrite.CodeThrottled, Outcome: rewrite.Refused})
	perm := replyProvider(&rewrite.Error{Code: rewrite.CodeAuthFailed, Outcome: rewrite.Refused})
	for _, tc := range []struct {
		name string
		in   []*reply
		want string
	}{
		{"all delivered", []*reply{ok1, ok2}, "250 Ok: a b"},
		{"delivered and temporary", []*reply{ok1, temp}, "554 " + replyPartial.text},
		{"delivered and permanent", []*reply{perm, ok1}, "554 " + replyPartial.text},
		{"temporary and permanent", []*reply{temp, perm}, "554 " + perm.text},
		{"temporary only", []*reply{temp}, "451 " + temp.text},
		{"unknown wins", []*reply{ok1, temp, replyUnknown}, "554 " + replyUnknown.text},
	} {
		r := worst(tc.in)
		if got := fmt.Sprintf("%d %s", r.code, r.text); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestBareLF(t *testing.T) {
	for in, want := range map[string]bool{"": false, "a\r\nb\r\n": false, "a\nb": true, "\n": true, "a\r\nb\n": true, "a\r": false} {
		if got := bareLF([]byte(in)); got != want {
			t.Errorf("bareLF(%q) = %v", in, got)
		}
	}
}
