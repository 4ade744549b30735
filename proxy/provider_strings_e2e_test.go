package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"
)

// Issue 10 item 5: what a provider says is not trusted. These tests run a
// real postern listener against a fake provider that echoes the message
// text, puts the recipient's number in its error code, or returns a message
// id that is not readable, and check the reply to ISE and the audit line.

const (
	echoText = "Your password is Zq8-kestrel"
	echoTo   = "447700900123"
)

// echoFragments are pieces of echoText an audit line or reply must not
// carry in any case.
var echoFragments = []string{"password", "zq8-k", "kestrel", "word is"}

// stringsProvider is one provider's route and reply shapes for these tests.
type stringsProvider struct {
	provider, path, extra string
	accept                func(id string) canned                // the message accepted with this id
	refuse                func(code, description string) canned // refused with the provider's own code and wording
}

func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func stringsProviders() []stringsProvider {
	oneShape := func(id string) canned {
		return canned{202, `{"messages":[{"apiMessageId":` + jsonText(id) + `,"accepted":true,"to":"` + echoTo + `"}],"error":null}`}
	}
	oneRefuse := func(code, desc string) canned {
		return canned{400, `{"messages":[],"error":{"code":` + jsonText(code) + `,"description":` + jsonText(desc) + `}}`}
	}
	return []stringsProvider{
		{provider: "clickatell-one", path: "/v1/message", accept: oneShape, refuse: oneRefuse},
		{provider: "clickatell-platform", path: "/messages", accept: oneShape, refuse: oneRefuse},
		{provider: "clickatell-rest", path: "/rest/message",
			accept: func(id string) canned {
				return canned{202, `{"data":{"message":[{"accepted":true,"to":"` + echoTo + `","apiMessageId":` + jsonText(id) + `}]}}`}
			},
			refuse: func(code, desc string) canned {
				return canned{400, `{"error":{"code":` + jsonText(code) + `,"description":` + jsonText(desc) + `}}`}
			}},
		{provider: "twilio", path: "/2010-04-01/Accounts/" + testAccountSID + "/Messages.json",
			extra:  `account_sid = "` + testAccountSID + `"` + "\nfrom = \"+1 555 000 1111\"",
			accept: func(id string) canned { return canned{201, `{"sid":` + jsonText(id) + `,"status":"queued"}`} },
			refuse: func(code, desc string) canned {
				return canned{400, `{"code":` + code + `,"message":` + jsonText(desc) + `,"status":400}`}
			}},
		{provider: "template", path: "/send",
			extra: "auth = \"bearer\"\nid_pointer = \"/result/id\"\nerror_pointer = \"/error/text\"\n" +
				"body = { to = \"{{.To}}\", text = \"{{.Text}}\" }",
			accept: func(id string) canned { return canned{201, `{"result":{"id":` + jsonText(id) + `}}`} },
			refuse: func(code, desc string) canned {
				return canned{400, `{"error":{"code":` + jsonText(code) + `,"text":` + jsonText(desc) + `}}`}
			}},
	}
}

// lastAuditRaw returns the last audit line, decoded.
func lastAuditRaw(t *testing.T, p *postern) (map[string]any, string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(p.Audit.String()), "\n")
	raw := lines[len(lines)-1]
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("audit line %q: %v", raw, err)
	}
	return m, raw
}

var sevenDigits = regexp.MustCompile(`[0-9]{7}`)

// checkClean fails if s carries a piece of the text or, outside the fields
// that are postern's own hex (leaf certificate hash, client message id), a
// run of 7 digits.
func checkClean(t *testing.T, where, s string, line map[string]any) {
	t.Helper()
	for _, f := range echoFragments {
		if strings.Contains(strings.ToLower(s), f) {
			t.Errorf("%s carries %q of the message text: %s", where, f, s)
		}
	}
	if line == nil {
		if sevenDigits.MatchString(s) {
			t.Errorf("%s carries a run of 7 digits: %s", where, s)
		}
		return
	}
	for k, v := range line {
		switch k {
		case "leaf_sha256", "client_msg_id", "time":
			continue
		}
		b, _ := json.Marshal(v)
		if sevenDigits.Match(b) {
			t.Errorf("%s: %q carries a run of 7 digits: %s", where, k, b)
		}
	}
}

// TestProviderEchoesAreMaskedEndToEnd: a provider that refuses with the
// recipient's number as its error code and the text echoed back (in
// another case, and in part) in its description: ISE gets the fixed legacy
// answer, and the audit line keeps the provider's wording with both masked.
func TestProviderEchoesAreMaskedEndToEnd(t *testing.T) {
	for _, sp := range stringsProviders() {
		t.Run(sp.provider, func(t *testing.T) {
			desc := "Cannot deliver 'YOUR PASSWORD IS ZQ8-KESTREL' to " + echoTo + " (near: 'word is zq8')"
			fp := newFakeProvider(t, reply(sp.refuse(echoTo, desc)))
			p := startPostern(t, routeConfig(fp.CAFile(t), "r", sp.provider, fp.URL(sp.path), sp.extra), env())
			status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("+"+echoTo, echoText))
			if status != http.StatusBadGateway || body != "ERR: 901, Upstream error\n" {
				t.Errorf("ISE got %d %q, want 502 \"ERR: 901, Upstream error\\n\"", status, body)
			}
			if n := len(fp.Requests()); n != 1 {
				t.Fatalf("provider got %d requests, want 1", n)
			}
			line, raw := lastAuditRaw(t, p)
			if line["outcome"] != "refused" || line["code"] != "901" {
				t.Errorf("audit: want outcome refused, code 901: %s", raw)
			}
			reason, _ := line["reason"].(string)
			if !strings.Contains(reason, "[text]") || !strings.Contains(reason, "[number]") || !strings.Contains(reason, "Cannot deliver") {
				t.Errorf("audit reason should keep the provider's wording with the echo and the number masked: %q", reason)
			}
			checkClean(t, "audit line", raw, line)
			checkClean(t, "reply", body, nil)
			checkClean(t, "log", p.Log.String(), nil)
		})
	}
}

// TestProviderMessageIDsEndToEnd: a readable id holding part of the text is
// passed on masked; a hex id with digit runs passes unchanged; an id that
// is not readable (too long, spaces, quotes, a line break, the text) ends
// as 502 "ERR: 901, Provider reply unreadable, outcome unknown", audited
// unknown, and the id appears nowhere.
func TestProviderMessageIDsEndToEnd(t *testing.T) {
	for _, sp := range stringsProviders() {
		t.Run(sp.provider, func(t *testing.T) {
			var id atomic.Value // the id the provider answers with
			fp := newFakeProvider(t, func(w http.ResponseWriter, r received) { reply(sp.accept(id.Load().(string)))(w, r) })
			p := startPostern(t, routeConfig(fp.CAFile(t), "r", sp.provider, fp.URL(sp.path), sp.extra), env())
			send := func() (int, string) {
				return p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("+"+echoTo, echoText))
			}

			for _, tc := range []struct{ id, want string }{
				{"a55b8f8d56f33440e993aa614c68bf8b", "a55b8f8d56f33440e993aa614c68bf8b"},
				{"SM9876543210fedcba9876543210fedcba", "SM9876543210fedcba9876543210fedcba"},
				{"msg-ZQ8-KESTREL-1", "msg-[text]-1"},
				{"id-" + echoTo, "id-[number]"},
			} {
				id.Store(tc.id)
				status, body := send()
				if want := "ID: " + tc.want + "\n"; status != http.StatusOK || body != want {
					t.Errorf("id %q: ISE got %d %q, want 200 %q", tc.id, status, body, want)
				}
				line, raw := lastAuditRaw(t, p)
				if ids, _ := line["ids"].([]any); line["outcome"] != "delivered" || len(ids) != 1 || ids[0] != tc.want {
					t.Errorf("id %q: audit should be delivered with ids [%q]: %s", tc.id, tc.want, raw)
				}
				if tc.id == tc.want { // a random id's own digit runs are kept
					continue
				}
				checkClean(t, "reply", body, nil)
				checkClean(t, "audit line", raw, line)
			}

			for _, bad := range []string{
				echoText,
				"abc def",
				`abc"def`,
				"abc'def",
				"abc\ndef",
				"abc\r\nX-Injected: 1",
				"<b>id</b>",
				strings.Repeat("a", 65),
				"ZQ8-KESTREL " + strings.Repeat("9", 60),
			} {
				id.Store(bad)
				status, body := send()
				if want := "ERR: 901, Provider reply unreadable, outcome unknown\n"; status != http.StatusBadGateway || body != want {
					t.Errorf("id %q: ISE got %d %q, want 502 %q", bad, status, body, want)
				}
				line, raw := lastAuditRaw(t, p)
				if line["outcome"] != "unknown" || line["code"] != "901" || line["ids"] != nil {
					t.Errorf("id %q: audit should be outcome unknown, code 901, no ids: %s", bad, raw)
				}
				if strings.Contains(raw, jsonText(bad)[1:len(jsonText(bad))-1]) {
					t.Errorf("id %q appears in the audit line: %s", bad, raw)
				}
				checkClean(t, "audit line", raw, line)
			}
			if n := len(fp.Requests()); n != 13 {
				t.Errorf("provider got %d requests, want 13 (an unreadable id is never retried)", n)
			}
			checkClean(t, "log", p.Log.String(), nil)
		})
	}
}

// TestMalformedProviderReplyIsMasked: a provider that answers with
// something that is not HTTP, quoting the text and the number, makes Go's
// client quote that line in its error; the audit reason gets it masked and
// cut, and ISE the fixed "outcome unknown" answer.
func TestMalformedProviderReplyIsMasked(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r received) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		// No space: Go quotes the whole line ("malformed HTTP response ...").
		fmt.Fprintf(buf, "YOUR_PASSWORD_IS_ZQ8-KESTREL_for_+%s_%s\r\n\r\n", echoTo, strings.Repeat("x", 3000))
		buf.Flush()
	})
	p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), ""), env())
	status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("+"+echoTo, echoText))
	if want := "ERR: 901, Upstream connection failed, outcome unknown\n"; status != http.StatusBadGateway || body != want {
		t.Errorf("ISE got %d %q, want 502 %q", status, body, want)
	}
	line, raw := lastAuditRaw(t, p)
	reason, _ := line["reason"].(string)
	if line["outcome"] != "unknown" || !strings.Contains(reason, "malformed HTTP response") || !strings.Contains(reason, "[text]") ||
		!strings.Contains(reason, "[number]") {
		t.Errorf("audit should be unknown with the malformed reply masked: %s", raw)
	}
	if n := utf8.RuneCountInString(reason); n > 600 {
		t.Errorf("audit reason is %d characters, want it cut at 500 plus postern's own words", n)
	}
	checkClean(t, "audit line", raw, line)
	checkClean(t, "log", p.Log.String(), nil)
}
