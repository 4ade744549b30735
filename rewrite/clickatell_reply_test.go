package rewrite

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// want is one recipient's expected outcome: an id, or an error code with
// its outcome ("" id and "" code never both).
type want struct {
	id      string
	code    string
	outcome Outcome
}

var (
	ok      = func(id string) want { return want{id: id, outcome: Delivered} }
	refused = func(code string) want { return want{code: code, outcome: Refused} }
	unknown = want{code: CodeInternal, outcome: Unknown}
)

type readCase struct {
	name   string
	to     []string
	status int
	body   string
	want   []want
}

func checkRead(t *testing.T, p Provider, tc readCase) {
	t.Helper()
	m := Message{To: tc.to, Text: "Your password is Zq8-secret"}
	got := p.Read(m, Response{Status: tc.status, Body: []byte(tc.body)})
	if len(got.Recipients) != len(tc.want) {
		t.Fatalf("%s: Read(%d %s): got %d recipients, want %d", tc.name, tc.status, tc.body, len(got.Recipients), len(tc.want))
	}
	for i, r := range got.Recipients {
		w := tc.want[i]
		if r.To != tc.to[i] {
			t.Errorf("%s: Read(%d %s): recipient %d is %q, want %q", tc.name, tc.status, tc.body, i, r.To, tc.to[i])
		}
		switch {
		case w.outcome == Delivered && (r.Err != nil || r.ID != w.id):
			t.Errorf("%s: Read(%d %s): recipient %s got id %q err %v, want id %q", tc.name, tc.status, tc.body, r.To, r.ID, r.Err, w.id)
		case w.outcome == Delivered:
		case r.Err == nil:
			t.Errorf("%s: Read(%d %s): recipient %s got id %q, want error %s", tc.name, tc.status, tc.body, r.To, r.ID, w.code)
		case r.Err.Code != w.code || r.Err.Outcome != w.outcome || r.Err.Status != 502:
			t.Errorf("%s: Read(%d %s): recipient %s got %d %s %v, want 502 %s %v", tc.name, tc.status, tc.body, r.To, r.Err.Status, r.Err.Code, r.Err.Outcome, w.code, w.outcome)
		}
		if r.Err != nil {
			if w.outcome == Unknown && !strings.HasSuffix(r.Err.Description, "outcome unknown") {
				t.Errorf("%s: Read(%d %s): description %q, want it to end in \"outcome unknown\"", tc.name, tc.status, tc.body, r.Err.Description)
			}
			if strings.Contains(r.Err.Error(), "Zq8-secret") {
				t.Errorf("%s: Read(%d %s): error %q contains the message text", tc.name, tc.status, tc.body, r.Err)
			}
		}
	}
}

var (
	one = []string{"15551234567"}
	two = []string{"15551234567", "447700900123"}
)

func TestClickatellRESTRead(t *testing.T) {
	p, _ := NewClickatellREST(Config{Token: testToken})
	for _, tc := range []readCase{
		{"success", one, 202,
			`{"data":{"message":[{"accepted":true,"to":"15551234567","apiMessageId":"a55b8f8d56f33440e993aa614c68bf8b"}]}}`,
			[]want{ok("a55b8f8d56f33440e993aa614c68bf8b")}},
		{"success 200", one, 200,
			`{"data":{"message":[{"accepted":true,"to":"15551234567","apiMessageId":"id1"}]}}`,
			[]want{ok("id1")}},
		{"two, reply in other order and with +", two, 202,
			`{"data":{"message":[{"accepted":true,"to":"+447700900123","apiMessageId":"id2"},{"accepted":true,"to":"15551234567","apiMessageId":"id1"}]}}`,
			[]want{ok("id1"), ok("id2")}},
		{"two, no to in reply: by order", two, 202,
			`{"data":{"message":[{"accepted":true,"apiMessageId":"id1"},{"accepted":true,"apiMessageId":"id2"}]}}`,
			[]want{ok("id1"), ok("id2")}},
		{"mixed 207 with invalid number", two, 207,
			`{"data":{"message":[{"accepted":true,"to":"15551234567","apiMessageId":"id1"},{"accepted":false,"to":"447700900123","apiMessageId":"","error":{"code":"105","description":"Invalid Destination Address","documentation":"http://x"}}]}}`,
			[]want{ok("id1"), refused(CodeInvalidDestination)}},
		{"accepted false without error", one, 202,
			`{"data":{"message":[{"accepted":false,"to":"15551234567"}]}}`,
			[]want{refused(CodeInternal)}},
		{"auth failure", two, 401,
			`{"error":{"code":"001","description":"Authentication failed","documentation":"https://www.clickatell.com/developers/api-docs/error-codes"}}`,
			[]want{refused(CodeAuthFailed), refused(CodeAuthFailed)}},
		{"auth failure, numeric code, 400", one, 400,
			`{"error":{"code":7,"description":"IP Lockdown violation"}}`,
			[]want{refused(CodeAuthFailed)}},
		{"401 without body", one, 401, ``, []want{refused(CodeAuthFailed)}},
		{"no credit", one, 402, `{"error":{"code":"301","description":"No credit left"}}`, []want{refused(CodeNoCredit)}},
		{"number blocked", one, 410, `{"error":{"code":"121","description":"Destination mobile number blocked"}}`, []want{refused(CodeInvalidDestination)}},
		{"invalid number 400", one, 400, `{"error":{"code":"105","description":"Invalid destination address"}}`, []want{refused(CodeInvalidDestination)}},
		{"throttled 429", two, 429, `{"error":{"code":"130","description":"Maximum MT limit exceeded"}}`, []want{refused(CodeThrottled), refused(CodeThrottled)}},
		{"throttled 429, HTML", one, 429, `<html>slow down</html>`, []want{refused(CodeThrottled)}},
		{"503", one, 503, `<html><body>Service Unavailable</body></html>`, []want{refused(CodeInternal)}},
		{"500 JSON", one, 500, `{"error":{"code":"901","description":"Internal error"}}`, []want{refused(CodeInternal)}},
		{"2xx with top-level error", two, 202, `{"error":{"code":"001","description":"Authentication failed"}}`, []want{refused(CodeAuthFailed), refused(CodeAuthFailed)}},
		{"2xx with errorCode sibling", one, 200, `{"error":null,"errorCode":"301","errorDescription":"No credit left"}`, []want{refused(CodeNoCredit)}},
		{"2xx, top-level error but entry accepted", one, 202,
			`{"data":{"message":[{"accepted":true,"to":"15551234567","apiMessageId":"id1"}]},"error":{"code":"901","description":"x"}}`,
			[]want{unknown}},
		{"non-JSON 2xx", two, 202, `OK: queued`, []want{unknown, unknown}},
		{"empty 2xx", one, 202, ``, []want{unknown}},
		{"null 2xx", one, 200, `null`, []want{unknown}},
		{"2xx omits a recipient", two, 202,
			`{"data":{"message":[{"accepted":true,"to":"447700900123","apiMessageId":"id2"}]}}`,
			[]want{unknown, ok("id2")}},
		{"2xx data of the wrong type", one, 202, `{"data":"yes"}`, []want{unknown}},
	} {
		checkRead(t, p, tc)
	}
}

func TestClickatellOneRead(t *testing.T) {
	p, _ := NewClickatellOne(Config{Token: testToken})
	for _, tc := range []readCase{
		{"success", one, 202,
			`{"messages":[{"apiMessageId":"5d0e1c2f","accepted":true,"to":"15551234567","error":null}],"error":null}`,
			[]want{ok("5d0e1c2f")}},
		{"success, platform shape with null siblings", two, 202,
			`{"messages":[{"apiMessageId":"a","accepted":true,"to":"15551234567","errorCode":null,"error":null,"errorDescription":null},` +
				`{"apiMessageId":"b","accepted":true,"to":"447700900123","errorCode":null,"error":null,"errorDescription":null}],"errorCode":null,"error":null,"errorDescription":null}`,
			[]want{ok("a"), ok("b")}},
		{"accepted as a string", one, 202,
			`{"messages":[{"apiMessageId":"a","accepted":"true","to":"15551234567"}],"error":null}`,
			[]want{ok("a")}},
		{"per-message error string", two, 207,
			`{"messages":[{"apiMessageId":"a","accepted":true,"to":"15551234567"},{"apiMessageId":null,"accepted":false,"to":"447700900123","error":"Invalid destination address."}],"error":null}`,
			[]want{ok("a"), refused(CodeInvalidDestination)}},
		{"per-message errorCode sibling", one, 400,
			`{"messages":[{"apiMessageId":null,"accepted":false,"to":"15551234567","error":null,"errorCode":26,"errorDescription":"Recipient opted out"}],"error":null}`,
			[]want{refused(CodeInvalidDestination)}},
		{"accepted false", one, 202,
			`{"messages":[{"apiMessageId":null,"accepted":false,"to":"15551234567","error":null}],"error":null}`,
			[]want{refused(CodeInternal)}},
		{"auth failure", one, 401, `{"error":{"code":1,"description":"Invalid or missing Integration API Key","documentation":"x"}}`, []want{refused(CodeAuthFailed)}},
		{"auth failure, string code", one, 401, `{"error":{"code":"001","description":"x"}}`, []want{refused(CodeAuthFailed)}},
		{"IP not approved", one, 401, `{"messages":[],"error":{"code":7,"description":"IP address not approved"}}`, []want{refused(CodeAuthFailed)}},
		{"out of funds", two, 402, `{"error":{"code":20,"description":"Insufficient balance"}}`, []want{refused(CodeNoCredit), refused(CodeNoCredit)}},
		{"invalid recipient", one, 400, `{"error":{"code":25,"description":"Invalid recipient"}}`, []want{refused(CodeInvalidDestination)}},
		{"throttled as 400/43", two, 400, `{"error":{"code":43,"description":"Rate limit exceeded"}}`, []want{refused(CodeThrottled), refused(CodeThrottled)}},
		{"throttled 429", one, 429, ``, []want{refused(CodeThrottled)}},
		{"REST-only code is not One's", one, 400, `{"error":{"code":105,"description":"x"}}`, []want{refused(CodeInternal)}},
		{"503", one, 503, `{"error":{"code":19,"description":"Internal error, please retry"}}`, []want{refused(CodeInternal)}},
		{"2xx with top-level error", two, 202, `{"messages":[],"error":{"code":21,"description":"Payload malformed"}}`, []want{refused(CodeInternal), refused(CodeInternal)}},
		{"2xx with top-level error string", one, 200, `{"messages":[],"error":"Insufficient balance"}`, []want{refused(CodeInternal)}},
		{"non-JSON 2xx", one, 202, `<html>ok</html>`, []want{unknown}},
		{"truncated JSON 2xx", one, 202, `{"messages":[{"apiMessageId":"a","accep`, []want{unknown}},
		{"2xx omits a recipient", two, 202, `{"messages":[{"apiMessageId":"a","accepted":true,"to":"15551234567"}],"error":null}`, []want{ok("a"), unknown}},
	} {
		checkRead(t, p, tc)
	}
}

func TestClickatellRead_CauseKeepsProviderDetailOnly(t *testing.T) {
	p, _ := NewClickatellOne(Config{Token: testToken})
	m := Message{To: one, Text: "Your password is Zq8-secret"}
	long := strings.Repeat("é", 300)
	for _, tc := range []struct {
		body       string
		wantCause  string
		notInCause string
	}{
		{`{"error":{"code":23,"description":"Bad parameter"}}`, `clickatell-one: HTTP 400, code "23", "Bad parameter"`, ""},
		{`{"error":{"code":23,"description":"Cannot send 'Your password is Zq8-secret'"}}`, `[text]`, "Zq8-secret"},
		{`{"error":{"code":23,"description":"Cannot send \"Your password is Zq8-secret\""}}`, `[text]`, "Zq8-secret"},
		{`{"error":{"code":23,"description":"` + long + `"}}`, strings.Repeat("é", MaxProviderString), strings.Repeat("é", MaxProviderString+1)},
	} {
		r := p.Read(m, Response{Status: 400, Body: []byte(tc.body)}).Recipients[0]
		if r.Err == nil || r.Err.Cause == nil {
			t.Fatalf("Read(400 %s): got %+v, want an error with a cause", tc.body, r)
		}
		cause := r.Err.Cause.Error()
		if !strings.Contains(cause, tc.wantCause) || tc.notInCause != "" && strings.Contains(cause, tc.notInCause) {
			t.Errorf("Read(400 %s): got cause %q, want it to contain %q and not %q", tc.body, cause, tc.wantCause, tc.notInCause)
		}
		if r.Err.Description != "Upstream error" {
			t.Errorf("Read(400 %s): got description %q, want %q", tc.body, r.Err.Description, "Upstream error")
		}
		if n := utf8.RuneCountInString(cause); n > MaxProviderString+60 {
			t.Errorf("Read(400 %s): cause is %d characters, want it truncated", tc.body, n)
		}
	}
}
