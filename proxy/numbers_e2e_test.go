package proxy_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/config"
)

// numbersConfig has three routes with a default_country each: the
// clickatell-http dialect read in Germany and in Italy, and the query
// dialect read in Austria, the countries of issue 10's examples.
func numbersConfig(fp *fakeProvider, t testing.TB, limits string) string {
	return fmt.Sprintf(`
[trust]
ca_files = [%[1]q]

[limits]
%[3]s

[[route]]
name = "de"
match_host = "api.clickatell.com"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
default_country = "DE"
provider = "clickatell-one"
endpoint = %[2]q
token = "env:TEST_TOKEN"

[[route]]
name = "it"
match_host = "api.clickatell.com"
match_path = "/it/sendmsg"
inbound = "clickatell-http"
default_country = "IT"
provider = "clickatell-one"
endpoint = %[2]q
token = "env:TEST_TOKEN"

[[route]]
name = "at"
match_host = "sms.carrier.example"
match_path = "/send"
inbound = "query"
to_param = "phone"
text_param = "msg"
default_country = "AT"
provider = "clickatell-one"
endpoint = %[2]q
token = "env:TEST_TOKEN"
`, fp.CAFile(t), fp.URL("/v1/message"), limits)
}

// lastAudit is the audit line of the request just answered.
func lastAudit(t *testing.T, p *postern) auditLine {
	t.Helper()
	a := parseAudit(t, p.Audit.String())
	if len(a) == 0 {
		t.Fatal("no audit line")
	}
	return a[len(a)-1]
}

// TestLiteralPlusRecipient is issue 10 item 1: a number with a literal,
// unencoded "+" (which form decoding turns into a space) is international
// on a route with a default_country, in both dialects, in a GET query and
// in a POST body, and in `postern translate`. It used to be read as a
// national number: the password went to 494915112345678.
func TestLiteralPlusRecipient(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cfgTOML := numbersConfig(fp, t, `per_number = "off"`)
	p := startPostern(t, cfgTOML, env())
	const text = "Your password is k7Q2"
	const form = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, mode, host, target, body string
		want                           []string
	}{
		{"DE GET proxy", "proxy", clickatellIn, "/http/sendmsg?to=+4915112345678&text=Your+password+is+k7Q2", "", []string{"4915112345678"}},
		{"DE GET origin-form", "dns", clickatellIn, "/http/sendmsg?to=+4915112345678&text=Your+password+is+k7Q2", "", []string{"4915112345678"}},
		{"DE POST body", "post", clickatellIn, "/http/sendmsg", "to=+4915112345678&text=Your+password+is+k7Q2", []string{"4915112345678"}},
		{"DE bare-message POST", "post", clickatellIn, "/http/sendmsg?to=+4915112345678&text=", "Your+password+is+k7Q2", []string{"4915112345678"}},
		{"DE two recipients", "proxy", clickatellIn, "/http/sendmsg?to=+4915112345678,+4917612345678&text=Your+password+is+k7Q2", "", []string{"4915112345678", "4917612345678"}},
		{"DE national still national", "proxy", clickatellIn, "/http/sendmsg?to=0151+12345678&text=Your+password+is+k7Q2", "", []string{"4915112345678"}},
		{"IT GET", "proxy", clickatellIn, "/it/sendmsg?to=+33612345678&text=Your+password+is+k7Q2", "", []string{"33612345678"}},
		{"AT query GET", "proxy", "sms.carrier.example", "/send?phone=+33612345678&msg=Your+password+is+k7Q2", "", []string{"33612345678"}},
		{"AT query POST", "post", "sms.carrier.example", "/send", "phone=+33612345678&msg=Your+password+is+k7Q2", []string{"33612345678"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fp.Requests())
			var status int
			var body string
			if tc.mode == "post" {
				status, body = p.Post(t, tc.host, tc.target, form, tc.body)
			} else {
				status, body = p.Get(t, tc.mode, tc.host, tc.target)
			}
			reqs := fp.Requests()
			if len(reqs) != before+1 {
				t.Fatalf("provider got %d requests, want 1", len(reqs)-before)
			}
			texts, tos, err := oneAPIBody(reqs[before].Body)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tos, tc.want) || texts[0] != text {
				t.Errorf("provider got recipients %v, want %v", tos, tc.want)
			}
			if status != 200 || strings.Count(body, "ID: ") != len(tc.want) {
				t.Errorf("ISE got %d %q, want 200 with %d ids", status, body, len(tc.want))
			}
			a := lastAudit(t, p)
			var masked []string
			for _, w := range tc.want {
				masked = append(masked, strings.Repeat("*", len(w)-4)+w[len(w)-4:])
			}
			if a.Outcome != "delivered" || a.Status != 200 || !slices.Equal(a.To, masked) {
				t.Errorf("audit line %+v, want delivered to %v", a, masked)
			}
		})
	}

	// postern translate shows the number the provider would get.
	cfg, err := config.Load("test.toml", []byte(cfgTOML), config.LoadOptions{MaskTokens: true, LookupEnv: func(k string) (string, bool) {
		v, ok := env()[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	for rawURL, want := range map[string]string{
		"http://api.clickatell.com/http/sendmsg?to=+4915112345678&text=Your+password+is+k7Q2": `"to":"4915112345678"`,
		"http://api.clickatell.com/it/sendmsg?to=+33612345678&text=Your+password+is+k7Q2":     `"to":"33612345678"`,
		"http://sms.carrier.example/send?phone=+33612345678&msg=Your+password+is+k7Q2":        `"to":"33612345678"`,
	} {
		out, err := proxy.Translate(context.Background(), cfg, rawURL, "postern")
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("translate %s: got %v\n%s\nwant %s", rawURL, err, out, want)
		}
	}
}

// TestSameHandsetOneRateLimit is issue 10 item 2: with per_number = "3/10m"
// every way of writing one handset counts against one budget, is one
// single-flight key (the derived client message id), one masked audit
// recipient and one provider recipient.
func TestSameHandsetOneRateLimit(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	clock := &fakeClock{now: time.Date(2025, 3, 14, 12, 0, 0, 0, time.UTC)}
	p := startPosternWith(t, guardConfig(fp, t, "", `per_number = "3/10m"`, ""), env(), proxy.Options{Now: clock.Now})
	send := func(to string) (int, string) {
		return p.Get(t, "direct", "", "/http/sendmsg?user=u&to="+to+"&text=Your+password+is+k7Q2")
	}
	for _, to := range []string{"447700900555", "%2B4407700900555", "004407700900555"} {
		if status, body := send(to); status != 200 {
			t.Fatalf("to=%s: got %d %q, want 200", to, status, body)
		}
	}
	for _, to := range []string{"44+0+7700900555", "+44+(0)+7700+900+555", "%2B447700900555"} {
		if status, body := send(to); status != 429 || body != "ERR: 130, Maximum MT limit exceeded\n" {
			t.Errorf("to=%s: got %d %q, want 429: the same handset's fourth message", to, status, body)
		}
	}
	if status, body := send("%2B390612345678"); status != 200 {
		t.Errorf("another handset: got %d %q", status, body)
	}
	reqs := fp.Requests()
	if len(reqs) != 4 {
		t.Fatalf("provider got %d requests, want 4", len(reqs))
	}
	for i, r := range reqs {
		_, tos, _ := oneAPIBody(r.Body)
		want := []string{"447700900555"}
		if i == 3 {
			want = []string{"390612345678"} // Italy keeps its 0
		}
		if !slices.Equal(tos, want) {
			t.Errorf("provider request %d went to %v, want %v", i+1, tos, want)
		}
	}
	a := parseAudit(t, p.Audit.String())
	if len(a) != 7 {
		t.Fatalf("%d audit lines, want 7:\n%s", len(a), p.Audit)
	}
	for i, l := range a[:6] {
		if !slices.Equal(l.To, []string{"********0555"}) {
			t.Errorf("audit line %d: to %v, want the one normalised number", i+1, l.To)
		}
		if i < 3 && (l.Outcome != "delivered" || l.ClientMsgID == "" || l.ClientMsgID != a[0].ClientMsgID) {
			t.Errorf("audit line %d: %+v, want delivered with the first message's client message id %q", i+1, l, a[0].ClientMsgID)
		}
		if i >= 3 && (l.Outcome != "refused" || l.Code != "130") {
			t.Errorf("audit line %d: %+v, want refused 130", i+1, l)
		}
	}
}

// TestRecipientsCountedBeforeParsing is issue 10 item 7: a 64 KB POST with
// 5,000 numbers on a default_country route is refused for max_recipients
// before any number is parsed. The first number is invalid: had the list
// been parsed first, the answer would have been 105.
func TestRecipientsCountedBeforeParsing(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, numbersConfig(fp, t, `per_number = "off"`), env())
	body := "to=0151x" + strings.Repeat(",015112345678", 4999) + "&text=Your+password+is+k7Q2"
	if len(body) > 64<<10 {
		t.Fatalf("body is %d bytes, over max_body_bytes", len(body))
	}
	for _, tc := range []struct{ host, path, body string }{
		{clickatellIn, "/http/sendmsg", body},
		{"sms.carrier.example", "/send", strings.Replace(strings.Replace(body, "to=", "phone=", 1), "&text=", "&msg=", 1)},
	} {
		status, reply := p.Post(t, tc.host, tc.path, "application/x-www-form-urlencoded", tc.body)
		if status != 400 || reply != "ERR: 101, Too many recipients\n" {
			t.Errorf("%s: got %d %q, want 400 ERR: 101, Too many recipients", tc.path, status, reply)
		}
		a := lastAudit(t, p)
		if a.Outcome != "refused" || a.Status != 400 || a.Code != "101" || !strings.HasPrefix(a.Reason, "Too many recipients") || len(a.To) != 0 {
			t.Errorf("%s: audit line %+v, want refused 101 Too many recipients", tc.path, a)
		}
	}
	// Eleven recipients in a GET, duplicates included, are too many too.
	status, reply := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?to="+strings.Repeat("%2B4915112345678,", 11)+"&text=hi")
	if status != 400 || reply != "ERR: 101, Too many recipients\n" {
		t.Errorf("11 recipients: got %d %q", status, reply)
	}
	if n := len(fp.Requests()); n != 0 {
		t.Errorf("provider got %d requests, want none", n)
	}
}

// TestTextControlCharacters is issue 10 item 7: NUL, the noncharacters
// U+FFFE and U+FFFF (also as unicode=1 hex) and control characters other
// than tab, line feed and carriage return are refused with 116 and nothing
// is sent; a text with tabs and line breaks still goes out intact.
func TestTextControlCharacters(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, numbersConfig(fp, t, `per_number = "off"`), env())
	const refused = "ERR: 116, Invalid Unicode data\n"
	for _, q := range []string{
		"to=%2B4915112345678&text=Your+password%00is+k7Q2",
		"to=%2B4915112345678&text=Your+password+is+k7Q2%EF%BF%BE",
		"to=%2B4915112345678&text=Your+password+is+k7Q2%EF%BF%BF",
		"to=%2B4915112345678&unicode=1&text=0048FFFF",
		"to=%2B4915112345678&unicode=1&text=00480000",
		"to=%2B4915112345678&text=Your+password%1Bis+k7Q2",
		"to=%2B4915112345678&text=Your+password%7Fis+k7Q2",
		"to=%2B4915112345678&text=Your+password%C2%85is+k7Q2",
	} {
		status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+q)
		if status != 400 || body != refused {
			t.Errorf("%s: got %d %q, want 400 %q", q, status, body, refused)
		}
		a := lastAudit(t, p)
		if a.Outcome != "refused" || a.Status != 400 || a.Code != "116" || !strings.HasPrefix(a.Reason, "Invalid Unicode data: text ") {
			t.Errorf("%s: audit line %+v, want refused 116", q, a)
		}
	}
	if status, body := p.Post(t, "sms.carrier.example", "/send", "application/x-www-form-urlencoded", "phone=%2B4915112345678&msg=Your+password%00is+k7Q2"); status != 400 || body != refused {
		t.Errorf("query POST with NUL: got %d %q", status, body)
	}
	if n := len(fp.Requests()); n != 0 {
		t.Fatalf("provider got %d requests, want none", n)
	}
	mustNotContain(t, "audit", p.Audit.String(), "password", "k7Q2")

	status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?to=%2B4915112345678&text=Your%09password%0Ais%0D%0Ak7Q2")
	if status != 200 || !strings.HasPrefix(body, "ID: ") {
		t.Fatalf("tab and line breaks: got %d %q", status, body)
	}
	if texts, _, _ := oneAPIBody(fp.Requests()[0].Body); len(texts) != 1 || texts[0] != "Your\tpassword\nis\r\nk7Q2" {
		t.Errorf("provider got %q", texts)
	}
}
