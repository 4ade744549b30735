package rewrite

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func FuzzParseQuery(f *testing.F) {
	f.Add("phone=07700+900123&msg=Your+password+is+abc123&user=x&pass=y", []byte(nil), "GET")
	f.Add("phone=07700900123&msg=", []byte("Your+password+%26+more"), "POST")
	f.Add("", []byte("phone=%2B44+7700+900123,0033612345678&msg=hi&sender=Guest"), "POST")
	q, err := NewQuery(DialectConfig{DefaultCountry: "GB"}, QueryConfig{ToParam: "phone", TextParam: "msg", FromParam: "sender"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rawQuery string, body []byte, method string) {
		in := Inbound{Method: method, RawQuery: rawQuery, Body: body}
		if method == http.MethodPost {
			in.ContentType = formContentType
		}
		m, err := q.Parse(in)
		if err == nil {
			checkParsed(t, rawQuery, body, method, m)
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Status < 400 || e.Status > 499 || e.Outcome != Refused {
			t.Fatalf("Parse(%q, %q, %q): got %v, want a 4xx refused *Error", rawQuery, body, method, err)
		}
		if v, uerr := url.QueryUnescape(string(body)); uerr == nil && len(v) >= 8 && !strings.Contains(fixedVocabulary, v) && strings.Contains(e.Error(), v) {
			t.Fatalf("error %q echoes the body", e.Error())
		}
	})
}

// FuzzProviderRead: whatever the platform, Twilio or a template gateway
// answers, each recipient gets exactly one outcome, errors are 502 without
// the text, failover is never offered when the outcome is unknown, and
// nothing counts as delivered from a reply that is not JSON.
func FuzzProviderRead(f *testing.F) {
	f.Add(201, []byte(`{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued"}`))
	f.Add(429, []byte(`{"code":20429,"message":"Too Many Requests","status":429}`))
	f.Add(200, []byte(`{"messages":[{"status":"3","error-text":"Invalid to address"}]}`))
	f.Add(202, []byte(`{"messages":[{"apiMessageId":"x","accepted":true,"to":"15551234567"}],"error":null}`))
	f.Add(503, []byte(`<html>down</html>`))
	platform, _ := NewClickatellPlatform(Config{Token: "k"})
	twilio, err := NewTwilio(Config{Token: "k", From: "+15550001111"}, TwilioConfig{AccountSID: "AC0123456789abcdef0123456789abcdef"})
	if err != nil {
		f.Fatal(err)
	}
	u, _ := url.Parse("https://127.0.0.1:9/send")
	tmpl, err := NewTemplate(Config{Token: "k", Endpoint: u}, TemplateConfig{Auth: "bearer",
		Body: map[string]any{"text": "{{.Text}}"}, IDPointer: "/messages/0/message-id", ErrorPointer: "/messages/0/error-text"})
	if err != nil {
		f.Fatal(err)
	}
	m := Message{To: []string{"15551234567"}, Text: "secret text"}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		for _, p := range []Provider{platform, twilio, tmpl} {
			res := p.Read(m, Response{Status: status, Body: body})
			if len(res.Recipients) != 1 || res.Recipients[0].To != m.To[0] {
				t.Fatalf("Read(%d, %q): recipients %+v", status, body, res.Recipients)
			}
			r := res.Recipients[0]
			switch {
			case r.Err == nil && (r.ID == "" || !json.Valid(body)):
				t.Fatalf("Read(%d, %q): delivered with id %q", status, body, r.ID)
			case r.Err != nil && (r.Err.Status != http.StatusBadGateway || strings.Contains(r.Err.Error(), m.Text)):
				t.Fatalf("Read(%d, %q): error %v, want 502 without the text", status, body, r.Err)
			case r.Err != nil && r.Err.Failover && r.Err.Outcome != Refused:
				t.Fatalf("Read(%d, %q): failover offered for outcome %v", status, body, r.Err.Outcome)
			}
		}
	})
}
