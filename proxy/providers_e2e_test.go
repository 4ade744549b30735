package proxy_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const (
	hex32          = "0123456789abcdef0123456789abcdef"
	testAccountSID = "AC" + hex32
	testMessageSID = "SM" + hex32
)

// canned is a fixed provider reply.
type canned struct {
	status int
	body   string
}

func reply(c canned) func(http.ResponseWriter, received) {
	return func(w http.ResponseWriter, _ received) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(c.status)
		fmt.Fprint(w, c.body)
	}
}

// providerCase is one provider's contract: the route keys it needs, the
// exact request it must send for "Your password is abc123" to
// +1 555 123 4567, and how it answers each scenario.
type providerCase struct {
	provider, path, extra string
	checkRequest          func(t *testing.T, r received)
	replies               map[string]canned
	want                  map[string]canned // what ISE gets
}

var scenarios = []string{"success", "auth failure", "invalid number", "throttled 429", "server error"}

var iseWant = map[string]canned{
	"auth failure":   {502, "ERR: 001, Authentication failed\n"},
	"invalid number": {502, "ERR: 105, Invalid destination address\n"},
	"throttled 429":  {502, "ERR: 130, Maximum MT limit exceeded\n"},
	"server error":   {502, "ERR: 901, Upstream error\n"},
}

func wantHeader(t *testing.T, r received, k, v string) {
	t.Helper()
	if got := r.Header.Get(k); got != v {
		t.Errorf("provider header %s: got %q, want %q", k, got, v)
	}
}

func providerCases() []providerCase {
	return []providerCase{
		{
			provider: "clickatell-platform", path: "/messages", extra: `from = "15550001111"`,
			checkRequest: func(t *testing.T, r received) {
				wantHeader(t, r, "Authorization", testToken)
				wantHeader(t, r, "Content-Type", "application/json")
				// clientMessageId is derived from the request (see fault_test.go).
				body := clientMsgIDRE.ReplaceAllString(string(r.Body), `"clientMessageId":"pst…"`)
				if want := `{"content":"Your password is abc123","to":["15551234567"],"from":"15550001111","clientMessageId":"pst…"}`; body != want {
					t.Errorf("provider body: got %s, want %s", r.Body, want)
				}
			},
			replies: map[string]canned{
				"success":        {202, `{"messages":[{"apiMessageId":"plat0001","accepted":true,"to":"15551234567","errorCode":null,"error":null,"errorDescription":null}],"errorCode":null,"error":null,"errorDescription":null}`},
				"auth failure":   {401, `{"messages":[],"error":{"code":1,"description":"Invalid or missing Integration API Key"}}`},
				"invalid number": {202, `{"messages":[{"apiMessageId":null,"accepted":false,"to":"15551234567","error":"Invalid destination address."}],"error":null}`},
				"throttled 429":  {429, `{"messages":[],"error":{"code":43,"description":"Rate limit exceeded"}}`},
				"server error":   {503, `{"messages":[],"error":{"code":19,"description":"Internal error, please retry"}}`},
			},
			want: map[string]canned{"success": {200, "ID: plat0001\n"}},
		},
		{
			provider: "twilio", path: "/2010-04-01/Accounts/" + testAccountSID + "/Messages.json",
			extra: `account_sid = "` + testAccountSID + `"` + "\nfrom = \"+1 555 000 1111\"",
			checkRequest: func(t *testing.T, r received) {
				wantHeader(t, r, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(testAccountSID+":"+testToken)))
				wantHeader(t, r, "Content-Type", "application/x-www-form-urlencoded")
				if want := "Body=Your+password+is+abc123&From=%2B15550001111&To=%2B15551234567"; string(r.Body) != want {
					t.Errorf("provider body: got %s, want %s", r.Body, want)
				}
				if err := validateTwilioRequest(r); err != nil {
					t.Error(err)
				}
			},
			replies: map[string]canned{
				"success":        {201, `{"sid":"` + testMessageSID + `","status":"queued","error_code":null,"error_message":null,"to":"+15551234567","num_segments":"1"}`},
				"auth failure":   {401, `{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}`},
				"invalid number": {400, `{"code":21211,"message":"The 'To' number +15551234567 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`},
				"throttled 429":  {429, `{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}`},
				"server error":   {500, `{"code":20500,"message":"Internal Server Error","more_info":"https://www.twilio.com/docs/errors/20500","status":500}`},
			},
			want: map[string]canned{"success": {200, "ID: " + testMessageSID + "\n"}},
		},
		{
			// A Sinch-style JSON gateway described in config.
			provider: "template", path: "/xms/v1/plan/batches", extra: sinchTemplate,
			checkRequest: func(t *testing.T, r received) {
				wantHeader(t, r, "Authorization", "Bearer "+testToken)
				wantHeader(t, r, "Content-Type", "application/json")
				wantHeader(t, r, "X-Client", "postern")
				if want := `{"body":"Your password is abc123","from":"15550001111","to":["+15551234567"]}`; string(r.Body) != want {
					t.Errorf("provider body: got %s, want %s", r.Body, want)
				}
			},
			replies: map[string]canned{
				"success":        {201, `{"id":"01FC66621XXXXX119Z8PMV1QPQ","to":["15551234567"],"canceled":false}`},
				"auth failure":   {401, `{"code":"unauthorized","text":"Unauthorized"}`},
				"invalid number": {410, `{"code":"invalid_recipient","text":"Recipient gone"}`},
				"throttled 429":  {429, `{"code":"too_many_requests","text":"Slow down"}`},
				"server error":   {500, `{"code":"internal","text":"Internal error"}`},
			},
			want: map[string]canned{"success": {200, "ID: 01FC66621XXXXX119Z8PMV1QPQ\n"}},
		},
	}
}

const sinchTemplate = `
from = "15550001111"
method = "POST"
content_type = "json"
auth = "bearer"
id_pointer = "/id"
error_pointer = "/text"
headers = { X-Client = "postern" }
body = { from = "{{.From}}", to = ["{{.To}}"], body = "{{.Text}}" }
`

// TestProvidersEndToEnd: per provider, through a real postern listener to a
// TLS fake of that provider, what the provider received and what ISE got
// back, for success and each kind of refusal.
func TestProvidersEndToEnd(t *testing.T) {
	for _, pc := range providerCases() {
		t.Run(pc.provider, func(t *testing.T) {
			for _, sc := range scenarios {
				t.Run(sc, func(t *testing.T) {
					fp := newFakeProvider(t, reply(pc.replies[sc]))
					p := startPostern(t, routeConfig(fp.CAFile(t), "r", pc.provider, fp.URL(pc.path), pc.extra), env())
					status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("+1 (555) 123-4567", "Your password is abc123"))
					want, ok := pc.want[sc]
					if !ok {
						want = iseWant[sc]
					}
					if status != want.status || body != want.body {
						t.Errorf("ISE got %d %q, want %d %q", status, body, want.status, want.body)
					}
					reqs := fp.Requests()
					if len(reqs) != 1 {
						t.Fatalf("provider got %d requests, want 1", len(reqs))
					}
					r := reqs[0]
					if r.Method != http.MethodPost || r.Path != pc.path || r.Query != "" {
						t.Errorf("provider request line: got %s %s?%s, want POST %s", r.Method, r.Path, r.Query, pc.path)
					}
					pc.checkRequest(t, r)
					mustNotContain(t, "provider request", r.Raw(), legacyUser, legacyPass, legacyAPIID)
					wantOutcome := `"outcome":"refused"`
					if sc == "success" {
						wantOutcome = `"outcome":"delivered"`
					}
					if a := p.Audit.String(); !strings.Contains(a, wantOutcome) || !strings.Contains(a, `"segments":1`) {
						t.Errorf("audit: want %s and segments 1:\n%s", wantOutcome, a)
					}
					mustNotContain(t, "audit+log", p.Audit.String()+p.Log.String(), "Your password is abc123", "15551234567")
				})
			}
		})
	}
}

// TestTwilioOneRequestPerRecipient: Twilio takes one To per call, so two
// recipients are two requests, each valid per Twilio's OpenAPI, and ISE
// gets one line per recipient with its own outcome.
func TestTwilioOneRequestPerRecipient(t *testing.T) {
	fp := newFakeProvider(t, func(w http.ResponseWriter, r received) {
		form, _ := url.ParseQuery(string(r.Body))
		w.Header().Set("Content-Type", "application/json")
		if form.Get("To") == "+442079460958" {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"code":21614,"message":"'To' number is not a valid mobile number","status":400}`)
			return
		}
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(map[string]string{"sid": testMessageSID, "status": "accepted"})
	})
	extra := `account_sid = "` + testAccountSID + `"` + "\napi_key_sid = \"SK" + hex32 + "\"\nmessaging_service_sid = \"MG" + hex32 + "\""
	p := startPostern(t, routeConfig(fp.CAFile(t), "tw", "twilio", fp.URL("/2010-04-01/Accounts/"+testAccountSID+"/Messages.json"), extra), env())
	for name, text := range hostileTexts {
		before := len(fp.Requests())
		status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567,+44 20 7946 0958", text))
		want := "ID: " + testMessageSID + " To: 15551234567\nERR: 105, Invalid destination address To: 442079460958\n"
		if status != 200 || body != want {
			t.Errorf("%s: ISE got %d %q, want 200 %q", name, status, body, want)
		}
		reqs := fp.Requests()[before:]
		if len(reqs) != 2 {
			t.Fatalf("%s: provider got %d requests, want 2", name, len(reqs))
		}
		for i, r := range reqs {
			if err := validateTwilioRequest(r); err != nil {
				t.Errorf("%s: request %d: %v", name, i, err)
			}
			form, _ := url.ParseQuery(string(r.Body))
			if form.Get("Body") != text || form.Get("MessagingServiceSid") != "MG"+hex32 || form.Has("From") {
				t.Errorf("%s: request %d form %v, want Body intact, MessagingServiceSid, no From", name, i, form)
			}
			if u, pw, _ := (&http.Request{Header: r.Header}).BasicAuth(); u != "SK"+hex32 || pw != testToken {
				t.Errorf("%s: Basic auth user %q, want the API key SID", name, u)
			}
		}
	}
	if !strings.Contains(p.Audit.String(), `"outcome":"partial"`) {
		t.Errorf("audit: want outcome partial:\n%s", p.Audit)
	}
}
