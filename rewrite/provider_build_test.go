package rewrite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

const testToken = "tok_AbC123xyz"

// hostileTexts are message texts that break naive encoders; each is sent as
// ISE's form encoding (want is what the handset must show).
var hostileTexts = []struct{ name, want string }{
	{"quotes", `He said "hi" and 'bye'`},
	{"backslash", `C:\temp\new \" \u0041`},
	{"ampersand and equals", "a&b=c&text=evil"},
	{"plus", "1+1=2"},
	{"percent", "100% sure, %41 stays"},
	{"hash", "#hashtag #1"},
	{"newline", "line1\nline2\r\nline3"},
	{"tab", "tab\there"},
	{"html", "<script>alert(1)</script> &amp;"},
	{"accents", "Café crème brûlée à la française, Ñandú"},
	{"emoji", "Password 🔑 ok 👍🏽 👨‍👩‍👧"},
	{"arabic", "كلمة المرور الخاصة بك هي ٤٥٦"},
	{"459 characters", strings.Repeat("Your pass ", 45) + "word: x9!"},
	{"semicolon", "a;b;c"},
	{"json-looking", `{"text":"x","to":["1"]}`},
}

// encodings are the ways ISE (Java URLEncoder or otherwise) may escape text.
var encodings = []struct {
	name string
	enc  func(string) string
}{
	{"plus-space", url.QueryEscape},
	{"%20-space", func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }},
}

type builtRequest struct {
	req  *http.Request
	body []byte
}

func build(t *testing.T, p Provider, m Message) builtRequest {
	t.Helper()
	req, err := p.Build(context.Background(), m)
	if err != nil {
		t.Fatalf("Build(%+v): %v", m, err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if req.ContentLength != int64(len(body)) {
		t.Errorf("Build(%+v): ContentLength %d, body %d bytes", m, req.ContentLength, len(body))
	}
	if req.GetBody == nil {
		t.Errorf("Build(%+v): GetBody is nil", m)
	}
	return builtRequest{req, body}
}

// leaks reports which ISE credential values appear anywhere in the request.
func (b builtRequest) leaks() []string {
	var all bytes.Buffer
	all.WriteString(b.req.URL.String())
	_ = b.req.Header.Write(&all)
	all.Write(b.body)
	var found []string
	for _, s := range []string{iseUser, isePassword, iseAPIID} {
		if strings.Contains(all.String(), s) {
			found = append(found, s)
		}
	}
	return found
}

type restBodyForTest struct {
	Text            string   `json:"text"`
	To              []string `json:"to"`
	From            *string  `json:"from"`
	MO              *string  `json:"mo"`
	ClientMessageID *string  `json:"clientMessageId"`
	Callback        *int     `json:"callback"`
	MaxMessageParts *int     `json:"maxMessageParts"`
}

type oneBodyForTest struct {
	Messages []struct {
		Channel string  `json:"channel"`
		To      string  `json:"to"`
		Content string  `json:"content"`
		From    *string `json:"from"`
	} `json:"messages"`
}

func strictDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

func TestClickatellHTTPParse_HostileTexts(t *testing.T) {
	rest, _ := NewClickatellREST(Config{Token: testToken})
	one, _ := NewClickatellOne(Config{Token: testToken})
	for _, tc := range hostileTexts {
		for _, e := range encodings {
			for _, to := range []string{"15551234567", "15551234567,447700900123"} {
				q := iseCreds + "&to=" + url.QueryEscape(to) + "&text=" + e.enc(tc.want)
				m, err := ClickatellHTTP{}.Parse(get(q))
				if err != nil {
					t.Errorf("%s/%s: Parse(%q): got error %v, want text %q", tc.name, e.name, q, err, tc.want)
					continue
				}
				if m.Text != tc.want {
					t.Errorf("%s/%s: Parse(%q): got text %q, want %q", tc.name, e.name, q, m.Text, tc.want)
				}
				wantTo := strings.Split(to, ",")
				if !reflect.DeepEqual(m.To, wantTo) {
					t.Errorf("%s/%s: Parse(%q): got to %q, want %q", tc.name, e.name, q, m.To, wantTo)
				}

				r := build(t, rest, m)
				var rb restBodyForTest
				strictDecode(t, r.body, &rb)
				if rb.Text != tc.want || !reflect.DeepEqual(rb.To, wantTo) {
					t.Errorf("%s/%s: REST Build(Parse(%q)): got text %q to %q, want %q %q", tc.name, e.name, q, rb.Text, rb.To, tc.want, wantTo)
				}
				if l := r.leaks(); l != nil {
					t.Errorf("%s/%s: REST Build(Parse(%q)): request contains ISE credentials %q", tc.name, e.name, q, l)
				}

				o := build(t, one, m)
				var ob oneBodyForTest
				strictDecode(t, o.body, &ob)
				if len(ob.Messages) != len(wantTo) {
					t.Fatalf("%s/%s: One Build(Parse(%q)): got %d messages, want %d", tc.name, e.name, q, len(ob.Messages), len(wantTo))
				}
				for i, msg := range ob.Messages {
					if msg.Content != tc.want || msg.To != wantTo[i] || msg.Channel != "sms" {
						t.Errorf("%s/%s: One Build(Parse(%q)): message %d got %+v, want content %q to %q", tc.name, e.name, q, i, msg, tc.want, wantTo[i])
					}
				}
				if l := o.leaks(); l != nil {
					t.Errorf("%s/%s: One Build(Parse(%q)): request contains ISE credentials %q", tc.name, e.name, q, l)
				}
			}
		}
	}
}

func TestClickatellHTTPParse_HostileTextsPOST(t *testing.T) {
	rest, _ := NewClickatellREST(Config{Token: testToken})
	for _, tc := range hostileTexts {
		for _, in := range []Inbound{
			post(iseCreds+"&to=15551234567", "text="+url.QueryEscape(tc.want)),
			post(iseCreds+"&to=15551234567&text=", url.QueryEscape(tc.want)), // bare $message$
		} {
			m, err := ClickatellHTTP{}.Parse(in)
			if err != nil || m.Text != tc.want {
				t.Errorf("%s: Parse(%q, body %q): got %q, %v, want %q", tc.name, in.RawQuery, in.Body, m.Text, err, tc.want)
				continue
			}
			var rb restBodyForTest
			strictDecode(t, build(t, rest, m).body, &rb)
			if rb.Text != tc.want {
				t.Errorf("%s: REST Build(Parse(body %q)): got %q, want %q", tc.name, in.Body, rb.Text, tc.want)
			}
		}
	}
}

func TestClickatellRESTBuild_Request(t *testing.T) {
	p, err := NewClickatellREST(Config{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	m := Message{To: []string{"15551234567", "447700900123"}, Text: `<a href="x">&</a>`}
	r := build(t, p, m)
	if r.req.Method != http.MethodPost || r.req.URL.String() != "https://api.clickatell.com/rest/message" {
		t.Errorf("Build(%+v): got %s %s, want POST https://api.clickatell.com/rest/message", m, r.req.Method, r.req.URL)
	}
	wantHeader := http.Header{
		"Authorization": {"Bearer " + testToken},
		"X-Version":     {"1"},
		"Content-Type":  {"application/json"},
		"Accept":        {"application/json"},
	}
	if !reflect.DeepEqual(r.req.Header, wantHeader) {
		t.Errorf("Build(%+v): got headers %v, want %v", m, r.req.Header, wantHeader)
	}
	// Exact bytes: no HTML escaping, no optional fields, no trailing newline.
	if want := `{"text":"<a href=\"x\">&</a>","to":["15551234567","447700900123"]}`; string(r.body) != want {
		t.Errorf("Build(%+v): got body %s, want %s", m, r.body, want)
	}
}

func TestClickatellRESTBuild_Options(t *testing.T) {
	endpoint, _ := url.Parse("https://eu.example.test/rest/message?x=1")
	for _, tc := range []struct {
		name string
		cfg  Config
		m    Message
		want string
	}{
		{"legacy from implies mo", Config{Token: "k"},
			Message{To: []string{"15551234567"}, Text: "hi", From: "15550001111"},
			`{"text":"hi","to":["15551234567"],"from":"15550001111","mo":"1"}`},
		{"configured from wins", Config{Token: "k", From: "+1 555 000 2222"},
			Message{To: []string{"15551234567"}, Text: "hi", From: "15550001111"},
			`{"text":"hi","to":["15551234567"],"from":"15550002222","mo":"1"}`},
		{"all options", Config{Token: "k", Endpoint: endpoint},
			Message{To: []string{"15551234567"}, Text: "hi", Options: Options{MO: true, Concat: 3, ClientMessageID: "abc", Callback: 7, DeliveryAck: true}},
			`{"text":"hi","to":["15551234567"],"clientMessageId":"abc","callback":7,"maxMessageParts":3}`},
	} {
		p, err := NewClickatellREST(tc.cfg)
		if err != nil {
			t.Fatalf("%s: NewClickatellREST: %v", tc.name, err)
		}
		r := build(t, p, tc.m)
		if string(r.body) != tc.want {
			t.Errorf("%s: Build(%+v): got %s, want %s", tc.name, tc.m, r.body, tc.want)
		}
		if tc.cfg.Endpoint != nil && r.req.URL.String() != tc.cfg.Endpoint.String() {
			t.Errorf("%s: Build(%+v): got URL %s, want %s", tc.name, tc.m, r.req.URL, tc.cfg.Endpoint)
		}
	}
}

func TestClickatellOneBuild_Request(t *testing.T) {
	p, err := NewClickatellOne(Config{Token: testToken, From: "15550001111"})
	if err != nil {
		t.Fatal(err)
	}
	m := Message{To: []string{"15551234567", "447700900123"}, Text: "hi & bye", From: "15559999999", Options: Options{Concat: 3}}
	r := build(t, p, m)
	if r.req.Method != http.MethodPost || r.req.URL.String() != "https://platform.clickatell.com/v1/message" {
		t.Errorf("Build(%+v): got %s %s, want POST https://platform.clickatell.com/v1/message", m, r.req.Method, r.req.URL)
	}
	wantHeader := http.Header{
		"Authorization": {testToken},
		"Content-Type":  {"application/json"},
		"Accept":        {"application/json"},
	}
	if !reflect.DeepEqual(r.req.Header, wantHeader) {
		t.Errorf("Build(%+v): got headers %v, want %v", m, r.req.Header, wantHeader)
	}
	want := `{"messages":[{"channel":"sms","to":"15551234567","content":"hi & bye","from":"15550001111"},` +
		`{"channel":"sms","to":"447700900123","content":"hi & bye","from":"15550001111"}]}`
	if string(r.body) != want {
		t.Errorf("Build(%+v): got body %s, want %s", m, r.body, want)
	}

	noFrom, _ := NewClickatellOne(Config{Token: testToken})
	m = Message{To: []string{"15551234567"}, Text: "hi"}
	if got, want := string(build(t, noFrom, m).body), `{"messages":[{"channel":"sms","to":"15551234567","content":"hi"}]}`; got != want {
		t.Errorf("Build(%+v): got body %s, want %s", m, got, want)
	}
}

func TestClickatellBuild_RejectsBadMessages(t *testing.T) {
	many := make([]string, 201)
	for i := range many {
		many[i] = "1555100" + string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
	}
	for _, m := range []Message{
		{Text: "hi"},
		{To: []string{"15551234567"}},
		{To: []string{"+15551234567"}, Text: "hi"},
		{To: []string{"15551234567\r\nX: y"}, Text: "hi"},
		{To: many, Text: "hi"},
	} {
		for _, name := range []string{"clickatell-one", "clickatell-platform", "clickatell-rest"} {
			p, _ := NewProvider(name, ProviderSettings{Config: Config{Token: testToken}})
			req, err := p.Build(context.Background(), m)
			var e *Error
			if !errors.As(err, &e) || req != nil || e.Outcome != Refused || e.Code != CodeInternal {
				t.Errorf("%s: Build(%d recipients, %q): got %v, %v, want refused 901 *Error", name, len(m.To), m.Text, req, err)
			}
		}
	}
}
