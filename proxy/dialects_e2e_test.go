package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

const queryRoute = `
[trust]
ca_files = [%q]

[[route]]
name = "carrier"
match_host = "sms.carrier.example"
match_path = "/send"
inbound = "query"
to_param = "phone"
text_param = "msg"
from_param = "sender"
reply_success = "OK {{.ID}}"
reply_failure = "FAIL {{.Code}} {{.Description}}"
default_country = "GB"
provider = "clickatell-one"
endpoint = %q
token = "env:TEST_TOKEN"
`

// TestQueryDialect: a carrier-style GET with configured parameter names and
// reply lines; national numbers are read in default_country.
func TestQueryDialect(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, fmt.Sprintf(queryRoute, fp.CAFile(t), fp.URL("/v1/message")), env())
	host := "sms.carrier.example"

	status, body := p.Get(t, "proxy", host, "/send?user=x&pass="+legacyPass+"&phone=07700+900123&msg=Hello+%26+welcome&sender=Guest")
	if status != 200 || body != "OK one00000000000000000000000000001\n" {
		t.Errorf("GET: got %d %q", status, body)
	}
	texts, tos, _ := oneAPIBody(fp.Requests()[0].Body)
	if fmt.Sprint(texts, tos) != "[Hello & welcome] [447700900123]" {
		t.Errorf("provider got %v %v, want the text and the GB number in international form", texts, tos)
	}
	mustNotContain(t, "provider request", fp.Requests()[0].Raw(), legacyPass)

	status, body = p.Get(t, "proxy", host, "/send?phone=07700+900123,+33+6+12+34+56+78&msg=hi")
	if status != 200 || body != "OK one00000000000000000000000000002\nOK one00000000000000000000000000003\n" {
		t.Errorf("two recipients: got %d %q", status, body)
	}
	for _, tc := range []struct{ q, want string }{
		{"/send?msg=hi", "FAIL 101 Invalid or missing parameters: to\n"},
		{"/send?phone=07700900123", "FAIL 107 Empty message\n"},
		{"/send?phone=12&msg=hi", "FAIL 105 Invalid destination address\n"},
		{"/send?to=07700900123&text=hi", "FAIL 101 Invalid or missing parameters: to\n"}, // Clickatell names are not this route's
	} {
		if status, body := p.Get(t, "proxy", host, tc.q); status != 400 || body != tc.want {
			t.Errorf("%s: got %d %q, want 400 %q", tc.q, status, body, tc.want)
		}
	}
	if n := len(fp.Requests()); n != 2 {
		t.Errorf("provider got %d requests, want 2", n)
	}
}

// TestPOSTForms: both dialects take ISE's form POSTs, including the POST
// whose data is only the message, with the number in the URL.
func TestPOSTForms(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cfg := fmt.Sprintf(queryRoute, fp.CAFile(t), fp.URL("/v1/message")) + `
[[route]]
name = "clickatell"
match_host = "api.clickatell.com"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "` + fp.URL("/v1/message") + `"
token = "env:TEST_TOKEN"
`
	p := startPostern(t, cfg, env())
	const form = "application/x-www-form-urlencoded"
	text := "Pass: a&b=c+d %25 ü"
	for _, tc := range []struct {
		name, host, path, body string
	}{
		{"clickatell full form", clickatellIn, "/http/sendmsg", legacyQuery("15551234567", text)},
		{"clickatell bare message", clickatellIn, "/http/sendmsg?" + legacyQuery("15551234567", ""), url.QueryEscape(text)},
		{"query full form", "sms.carrier.example", "/send", "phone=07700900123&msg=" + url.QueryEscape(text)},
		{"query bare message", "sms.carrier.example", "/send?phone=07700900123&msg=", url.QueryEscape(text)},
	} {
		before := len(fp.Requests())
		status, body := p.Post(t, tc.host, tc.path, form, tc.body)
		if status != 200 || !(strings.HasPrefix(body, "ID: ") || strings.HasPrefix(body, "OK ")) {
			t.Errorf("%s: got %d %q", tc.name, status, body)
			continue
		}
		var sent struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		json.Unmarshal(fp.Requests()[before].Body, &sent)
		if len(sent.Messages) != 1 || sent.Messages[0].Content != text {
			t.Errorf("%s: provider got %s, want text %q", tc.name, fp.Requests()[before].Body, text)
		}
	}
	if status, body := p.Post(t, clickatellIn, "/http/sendmsg", "application/json", `{"to":"15551234567"}`); status != 415 {
		t.Errorf("JSON POST: got %d %q, want 415", status, body)
	}
}

// TestMaxSegments: a text needing more SMS parts than max_segments is
// refused before anything is sent; the audit line counts segments.
func TestMaxSegments(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "max_segments = 2"), env())
	for _, tc := range []struct {
		name, text string
		status     int
		segments   string
	}{
		{"306 GSM-7 characters: 2 parts", strings.Repeat("a", 306), 200, `"segments":2`},
		{"307 GSM-7 characters: 3 parts", strings.Repeat("a", 307), 400, `"segments":3`},
		{"134 UCS-2 characters: 2 parts", strings.Repeat("ж", 134), 200, `"segments":2`},
		{"68 emoji: 3 parts", strings.Repeat("👋", 68), 400, `"segments":3`},
	} {
		before := p.Audit.String()
		status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", tc.text))
		if status != tc.status {
			t.Errorf("%s: got %d %q, want %d", tc.name, status, body, tc.status)
		}
		if tc.status == 400 && body != "ERR: 113, Maximum message parts exceeded\n" {
			t.Errorf("%s: got %q", tc.name, body)
		}
		if line := strings.TrimPrefix(p.Audit.String(), before); !strings.Contains(line, tc.segments) {
			t.Errorf("%s: audit lacks %s: %s", tc.name, tc.segments, line)
		}
	}
	if n := len(fp.Requests()); n != 2 {
		t.Errorf("provider got %d requests, want 2 (the refused texts must not be sent)", n)
	}
}
