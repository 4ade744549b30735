package rewrite

import (
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// ISE's copy of the old Clickatell credentials; postern must drop them.
const (
	iseUser     = "ise-sponsor-user"
	isePassword = "Pw-7x9Kq2Zs"
	iseAPIID    = "9081726354"
	iseCreds    = "user=" + iseUser + "&password=" + isePassword + "&api_id=" + iseAPIID
)

func get(rawQuery string) Inbound {
	return Inbound{Method: http.MethodGet, Host: "api.clickatell.com", Path: "/http/sendmsg", RawQuery: rawQuery}
}

func post(rawQuery, body string) Inbound {
	return Inbound{Method: http.MethodPost, Host: "api.clickatell.com", Path: "/http/sendmsg", RawQuery: rawQuery, ContentType: formContentType, Body: []byte(body)}
}

func TestClickatellHTTPParse_Accepts(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Inbound
		want Message
	}{
		{
			name: "ISE global default GET",
			in:   get(iseCreds + "&to=15551234567&MO=0&from=654321&text=Your+password+is+abc123"),
			want: Message{To: []string{"15551234567"}, Text: "Your password is abc123", From: "654321"},
		},
		{
			name: "number as the sponsor typed it",
			in:   get(iseCreds + "&to=%2B1+(555)+123-4567&text=hi"),
			want: Message{To: []string{"15551234567"}, Text: "hi"},
		},
		{
			name: "unescaped plus becomes a space and is stripped",
			in:   get(iseCreds + "&to=+15551234567&text=hi"),
			want: Message{To: []string{"15551234567"}, Text: "hi"},
		},
		{
			name: "several recipients, deduplicated in order",
			in:   get(iseCreds + "&to=447700900123,15551234567,%2B44+7700+900123,&text=hi"),
			want: Message{To: []string{"447700900123", "15551234567"}, Text: "hi"},
		},
		{
			name: "repeated to parameters",
			in:   get(iseCreds + "&to=15551234567&to=447700900123&text=hi"),
			want: Message{To: []string{"15551234567", "447700900123"}, Text: "hi"},
		},
		{
			name: "semicolon is data, not a separator",
			in:   get(iseCreds + "&to=15551234567&text=a;b"),
			want: Message{To: []string{"15551234567"}, Text: "a;b"},
		},
		{
			name: "all options",
			in:   get(iseCreds + "&to=15551234567&text=hi&from=%2B15550001111&mo=1&concat=3&climsgid=abc123&callback=7&deliv_ack=1&unicode=0"),
			want: Message{To: []string{"15551234567"}, Text: "hi", From: "15550001111",
				Options: Options{MO: true, Concat: 3, ClientMessageID: "abc123", Callback: 7, DeliveryAck: true}},
		},
		{
			name: "cliMsgId spelling",
			in:   get(iseCreds + "&to=15551234567&text=hi&cliMsgId=XyZ9"),
			want: Message{To: []string{"15551234567"}, Text: "hi", Options: Options{ClientMessageID: "XyZ9"}},
		},
		{
			name: "malformed optional values are ignored",
			in:   get(iseCreds + "&to=15551234567&text=hi&from=no+such+sender!&mo=yes&concat=-2&callback=8&climsgid=a-b&deliv_ack=true&unicode=x"),
			want: Message{To: []string{"15551234567"}, Text: "hi"},
		},
		{
			name: "unicode=1 hex, BMP",
			in:   get(iseCreds + "&to=15551234567&unicode=1&text=00480069"),
			want: Message{To: []string{"15551234567"}, Text: "Hi"},
		},
		{
			name: "unicode=1 hex, surrogate pair and Arabic",
			in:   get(iseCreds + "&to=15551234567&unicode=1&text=D83DDD11064306440645"),
			want: Message{To: []string{"15551234567"}, Text: "🔑كلم"},
		},
		{
			name: "POST form, body wins",
			in:   post(iseCreds+"&to=15551234567&text=from+query", "text=from+body&to=447700900123"),
			want: Message{To: []string{"447700900123"}, Text: "from body"},
		},
		{
			name: "POST form, query text kept when body has none",
			in:   post(iseCreds+"&text=from+query", "to=15551234567"),
			want: Message{To: []string{"15551234567"}, Text: "from query"},
		},
		{
			name: "POST bare $message$ body",
			in:   post(iseCreds+"&to=15551234567&text=", "Your+password%3A+a%3Db%26c+100%25"),
			want: Message{To: []string{"15551234567"}, Text: "Your password: a=b&c 100%"},
		},
		{
			name: "POST bare body without text parameter",
			in:   post(iseCreds+"&to=15551234567", "Hello%20there"),
			want: Message{To: []string{"15551234567"}, Text: "Hello there"},
		},
		{
			name: "POST without content type is read as a form",
			in:   Inbound{Method: http.MethodPost, RawQuery: iseCreds + "&to=15551234567", Body: []byte("text=hi")},
			want: Message{To: []string{"15551234567"}, Text: "hi"},
		},
		{
			name: "GET ignores a body",
			in:   Inbound{Method: http.MethodGet, RawQuery: iseCreds + "&to=15551234567&text=hi", Body: []byte("text=other")},
			want: Message{To: []string{"15551234567"}, Text: "hi"},
		},
	} {
		got, err := ClickatellHTTP{}.Parse(tc.in)
		if err != nil {
			t.Errorf("%s: Parse(%q, %q): got error %v, want %+v", tc.name, tc.in.RawQuery, tc.in.Body, err, tc.want)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Parse(%q, %q): got %+v, want %+v", tc.name, tc.in.RawQuery, tc.in.Body, got, tc.want)
		}
	}
}

func TestClickatellHTTPParse_Errors(t *testing.T) {
	const secretText = "Your password is Zq8-secret"
	esc := url.QueryEscape(secretText)
	for _, tc := range []struct {
		name   string
		in     Inbound
		status int
		code   string
		desc   string
	}{
		{"PUT", Inbound{Method: http.MethodPut, RawQuery: iseCreds + "&to=15551234567&text=" + esc}, 405, "101", descMethod},
		{"CONNECT", Inbound{Method: http.MethodConnect}, 405, "101", descMethod},
		{"lower-case get", Inbound{Method: "get", RawQuery: iseCreds + "&to=15551234567&text=" + esc}, 405, "101", descMethod},
		{"POST JSON", Inbound{Method: http.MethodPost, ContentType: "application/json", Body: []byte(`{"text":"` + secretText + `"}`)}, 415, "101", descContentType},
		{"bad escape in text", get(iseCreds + "&to=15551234567&text=" + esc + "+100%+sure"), 400, "101", descMalformed},
		{"bad escape in key", get(iseCreds + "&to=15551234567&%zz=1&text=" + esc), 400, "101", descMalformed},
		{"bad escape in body", post(iseCreds+"&to=15551234567", "text="+esc+"%2"), 400, "101", descMalformed},
		{"no to", get(iseCreds + "&text=" + esc), 400, "101", descMissingTo},
		{"empty to", get(iseCreds + "&to=&text=" + esc), 400, "101", descMissingTo},
		{"only commas", get(iseCreds + "&to=,+,&text=" + esc), 400, "101", descMissingTo},
		{"no text", get(iseCreds + "&to=15551234567"), 400, "107", descEmpty},
		{"empty text", get(iseCreds + "&to=15551234567&text="), 400, "107", descEmpty},
		{"empty unicode text", get(iseCreds + "&to=15551234567&unicode=1&text="), 400, "107", descEmpty},
		{"POST form without text is not a bare body", post(iseCreds+"&to=15551234567&text=", "password="+isePassword), 400, "107", descEmpty},
		{"short number", get(iseCreds + "&to=555123&text=" + esc), 400, "105", descDestination},
		{"long number", get(iseCreds + "&to=1555123456789012&text=" + esc), 400, "105", descDestination},
		{"letters", get(iseCreds + "&to=1555CALLNOW&text=" + esc), 400, "105", descDestination},
		{"one bad among good", get(iseCreds + "&to=15551234567,44abc&text=" + esc), 400, "105", descDestination},
		{"Latin-1 text", get(iseCreds + "&to=15551234567&text=Caf%E9+" + esc), 400, "116", descUnicode},
		{"odd hex length", get(iseCreds + "&to=15551234567&unicode=1&text=004"), 400, "116", descUnicode},
		{"not hex", get(iseCreds + "&to=15551234567&unicode=1&text=" + esc), 400, "116", descUnicode},
		{"lone high surrogate", get(iseCreds + "&to=15551234567&unicode=1&text=0048D83D"), 400, "116", descUnicode},
		{"lone low surrogate", get(iseCreds + "&to=15551234567&unicode=1&text=DD110048"), 400, "116", descUnicode},
		{"high surrogate then BMP", get(iseCreds + "&to=15551234567&unicode=1&text=D83D0048"), 400, "116", descUnicode},
	} {
		_, err := ClickatellHTTP{}.Parse(tc.in)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: Parse(%q): got %v, want *Error %s", tc.name, tc.in.RawQuery, err, tc.code)
			continue
		}
		if e.Status != tc.status || e.Code != tc.code || e.Description != tc.desc || e.Outcome != Refused {
			t.Errorf("%s: Parse(%q): got %d %s %q %v, want %d %s %q refused", tc.name, tc.in.RawQuery,
				e.Status, e.Code, e.Description, e.Outcome, tc.status, tc.code, tc.desc)
		}
		for _, secret := range []string{secretText, esc, "Zq8-secret", isePassword, "15551234567", "1555123456789012", "CALLNOW"} {
			if strings.Contains(e.Error(), secret) {
				t.Errorf("%s: Parse(%q): error %q echoes %q", tc.name, tc.in.RawQuery, e.Error(), secret)
			}
		}
	}
}

func TestClickatellHTTPReply_Golden(t *testing.T) {
	refused := &Error{Status: 502, Code: CodeInvalidDestination, Description: "Invalid destination address", Outcome: Refused}
	auth := &Error{Status: 502, Code: CodeAuthFailed, Description: "Authentication failed", Outcome: Refused}
	unknown := &Error{Status: 504, Code: CodeInternal, Description: "Upstream timeout, outcome unknown", Outcome: Unknown}
	for _, tc := range []struct {
		name string
		in   Result
		want Reply
	}{
		{"one delivered",
			Result{Recipients: []Recipient{{To: "15551234567", ID: "a55b8f8d56f33440e993aa614c68bf8b"}}},
			Reply{200, replyContentType, "ID: a55b8f8d56f33440e993aa614c68bf8b\n"}},
		{"one refused",
			Result{Recipients: []Recipient{{To: "15551234567", Err: refused}}},
			Reply{502, replyContentType, "ERR: 105, Invalid destination address\n"}},
		{"one unknown",
			Result{Recipients: []Recipient{{To: "15551234567", Err: unknown}}},
			Reply{504, replyContentType, "ERR: 901, Upstream timeout, outcome unknown\n"}},
		{"two delivered",
			Result{Recipients: []Recipient{{To: "15551234567", ID: "id1"}, {To: "447700900123", ID: "id2"}}},
			Reply{200, replyContentType, "ID: id1 To: 15551234567\nID: id2 To: 447700900123\n"}},
		{"mixed is 200",
			Result{Recipients: []Recipient{{To: "15551234567", Err: refused}, {To: "447700900123", ID: "id2"}}},
			Reply{200, replyContentType, "ERR: 105, Invalid destination address To: 15551234567\nID: id2 To: 447700900123\n"}},
		{"all refused takes the first status",
			Result{Recipients: []Recipient{{To: "15551234567", Err: refused}, {To: "447700900123", Err: BadRequest(CodeEmptyMessage, "Empty message")}}},
			Reply{502, replyContentType, "ERR: 105, Invalid destination address To: 15551234567\nERR: 107, Empty message To: 447700900123\n"}},
		{"unknown wins the status",
			Result{Recipients: []Recipient{{To: "15551234567", Err: auth}, {To: "447700900123", Err: unknown}}},
			Reply{504, replyContentType, "ERR: 001, Authentication failed To: 15551234567\nERR: 901, Upstream timeout, outcome unknown To: 447700900123\n"}},
		{"no recipients",
			Result{},
			Reply{500, replyContentType, "ERR: 901, Internal error\n"}},
		{"newlines cannot forge lines",
			Result{Recipients: []Recipient{{To: "15551234567", ID: "x\nID: forged"}}},
			Reply{200, replyContentType, "ID: x ID: forged\n"}},
	} {
		if got := (ClickatellHTTP{}).Reply(tc.in); got != tc.want {
			t.Errorf("%s: Reply(%+v): got %+v, want %+v", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestClickatellHTTPReplyError_Golden(t *testing.T) {
	for _, tc := range []struct {
		in   *Error
		want Reply
	}{
		{BadRequest(CodeMissingParams, "Invalid or missing parameters: to"), Reply{400, replyContentType, "ERR: 101, Invalid or missing parameters: to\n"}},
		{&Error{Status: 502, Code: "301", Description: "No credit left"}, Reply{502, replyContentType, "ERR: 301, No credit left\n"}},
		{&Error{Status: 504, Code: "901", Description: "Upstream timeout, outcome unknown", Outcome: Unknown}, Reply{504, replyContentType, "ERR: 901, Upstream timeout, outcome unknown\n"}},
		{&Error{Code: "901", Description: "Internal error"}, Reply{500, replyContentType, "ERR: 901, Internal error\n"}},
		{&Error{Status: 200, Code: "901", Description: "two\r\nlines"}, Reply{500, replyContentType, "ERR: 901, two  lines\n"}},
		{nil, Reply{500, replyContentType, "ERR: 901, Internal error\n"}},
	} {
		if got := (ClickatellHTTP{}).ReplyError(tc.in); got != tc.want {
			t.Errorf("ReplyError(%+v): got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestClickatellHTTPCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Inbound
		want Credentials
	}{
		{"GET", Inbound{Method: "GET", RawQuery: "user=u%20x&password=p%26w&api_id=42&to=1&text=t"}, Credentials{"u x", "p&w", "42"}},
		{"form POST body wins", Inbound{Method: "POST", RawQuery: "user=q", Body: []byte("user=b&password=bp&to=1")}, Credentials{"b", "bp", ""}},
		{"bare message POST keeps query", Inbound{Method: "POST", RawQuery: "user=q&password=qp", Body: []byte("password%3Dtext")}, Credentials{"q", "qp", ""}},
		{"malformed query", Inbound{Method: "GET", RawQuery: "user=%zz&password=p"}, Credentials{}},
		{"none", Inbound{Method: "GET", RawQuery: "to=1"}, Credentials{}},
	} {
		if got := (ClickatellHTTP{}).Credentials(tc.in); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
