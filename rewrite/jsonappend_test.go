package rewrite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// The provider bodies as they were built before the append encoders
// (issue 13): encoding/json over these structs, url.Values for Twilio.
// FuzzBodiesSameAsEncoders holds the new requests to them byte for byte.

type refOneRequest struct {
	Messages []refOneMessage `json:"messages"`
}

type refOneMessage struct {
	Channel string `json:"channel"`
	To      string `json:"to"`
	Content string `json:"content"`
	From    string `json:"from,omitempty"`
}

type refPlatformMessage struct {
	Content         string   `json:"content"`
	To              []string `json:"to"`
	From            string   `json:"from,omitempty"`
	ClientMessageID string   `json:"clientMessageId,omitempty"`
}

type refRESTMessage struct {
	Text            string   `json:"text"`
	To              []string `json:"to"`
	From            string   `json:"from,omitempty"`
	MO              string   `json:"mo,omitempty"`
	ClientMessageID string   `json:"clientMessageId,omitempty"`
	Callback        int      `json:"callback,omitempty"`
	MaxMessageParts int      `json:"maxMessageParts,omitempty"`
}

// refBuild is the request the provider built before, for m.
func refBuild(t *testing.T, p Provider, m Message) *http.Request {
	t.Helper()
	ctx := context.Background()
	var req *http.Request
	var err error
	switch p := p.(type) {
	case *ClickatellOne:
		body := refOneRequest{Messages: make([]refOneMessage, len(m.To))}
		for i, to := range m.To {
			body.Messages[i] = refOneMessage{Channel: "sms", To: to, Content: m.Text, From: p.cfg.sender(m)}
		}
		req, err = newJSONRequest(ctx, p.cfg.endpoint, body)
		if err == nil {
			req.Header.Set("Authorization", p.cfg.token)
		}
	case *ClickatellPlatform:
		body := refPlatformMessage{Content: m.Text, To: m.To, From: p.cfg.sender(m), ClientMessageID: m.Options.ClientMessageID}
		req, err = newJSONRequest(ctx, p.cfg.endpoint, body)
		if err == nil {
			req.Header.Set("Authorization", p.cfg.token)
		}
	case *ClickatellREST:
		body := refRESTMessage{Text: m.Text, To: m.To, ClientMessageID: m.Options.ClientMessageID,
			Callback: m.Options.Callback, MaxMessageParts: m.Options.Concat}
		if from := p.cfg.sender(m); from != "" {
			body.From, body.MO = from, "1"
		}
		req, err = newJSONRequest(ctx, p.cfg.endpoint, body)
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+p.cfg.token)
			req.Header.Set("X-Version", "1")
		}
	case *Twilio:
		form := url.Values{}
		form.Set("To", "+"+m.To[0])
		if p.service != "" {
			form.Set("MessagingServiceSid", p.service)
		} else {
			form.Set("From", p.from)
		}
		form.Set("Body", m.Text)
		req, err = newFormRequest(ctx, http.MethodPost, p.endpoint, form)
		if err == nil {
			req.SetBasicAuth(p.user, p.token)
		}
	default:
		t.Fatalf("no reference for %T", p)
	}
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func FuzzBodiesSameAsEncoders(f *testing.F) {
	for _, h := range hostileTexts {
		f.Add(h.want, "15551234567", "", "", 0, 0)
	}
	f.Add("x\u2028\u2029\x00\x1f\x7f\b\f\xff\xfe", "447700900123", "Sender\"1", "abc123", 7, 3)
	f.Add("a", "4915112345678", "+15550001111", "", 0, 255)
	providers := benchmarkedProviders(f)
	// Endpoints that do not print as they were written: an empty port,
	// a query, a fragment, an escaped path.
	odd, err := url.Parse("https://127.0.0.1:/v1/mes%2Fsage?x=1&y#frag")
	if err != nil {
		f.Fatal(err)
	}
	for _, mk := range []func() (Provider, error){
		func() (Provider, error) { return NewClickatellOne(Config{Token: testToken, Endpoint: odd}) },
		func() (Provider, error) { return NewClickatellPlatform(Config{Token: testToken, Endpoint: odd}) },
		func() (Provider, error) { return NewClickatellREST(Config{Token: testToken, Endpoint: odd}) },
		func() (Provider, error) {
			return NewTwilio(Config{Token: testToken, From: "+15550001111", Endpoint: odd}, TwilioConfig{AccountSID: "AC0123456789abcdef0123456789abcdef"})
		},
	} {
		p, err := mk()
		if err != nil {
			f.Fatal(err)
		}
		providers = append(providers, p)
	}
	f.Fuzz(func(t *testing.T, text, to, from, id string, callback, concat int) {
		to = strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, to)
		if n, err := NormalizeNumber(to); err != nil || n != to || text == "" {
			return
		}
		m := Message{To: []string{to}, Text: text, From: from, Options: Options{ClientMessageID: id, Callback: callback, Concat: concat}}
		if len(to) > 8 {
			m.To = append(m.To, to[:len(to)-1])
		}
		for _, p := range providers {
			if p.MaxRecipients() < len(m.To) {
				m.To = m.To[:1]
			}
			got, err := p.Build(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			want := refBuild(t, p, m)
			gotBody, _ := io.ReadAll(got.Body)
			wantBody, _ := io.ReadAll(want.Body)
			if string(gotBody) != string(wantBody) {
				t.Fatalf("%T body\n%s\nwant\n%s", p, gotBody, wantBody)
			}
			// Every field, the URL's and the context included, but the
			// functions and the body (compared by type here, by content
			// above and below).
			g, w := *got, *want
			g.Body, w.Body, g.GetBody, w.GetBody = nil, nil, nil, nil
			if !reflect.DeepEqual(g, w) || (got.GetBody == nil) != (want.GetBody == nil) ||
				fmt.Sprintf("%T", got.Body) != fmt.Sprintf("%T", want.Body) || got.Context() != want.Context() {
				t.Fatalf("%T request %+v\nwant %+v", p, got, want)
			}
			again, err := got.GetBody()
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := io.ReadAll(again); string(b) != string(wantBody) {
				t.Fatalf("%T GetBody %s", p, b)
			}
			// A Poster's parts are Build's request: a sender writing them
			// out itself sends what Build says.
			ps := p.(Poster)
			body, err := ps.PostBody(m)
			if err != nil || string(body) != string(wantBody) {
				t.Fatalf("%T PostBody = %q, %v; Build's body %q", p, body, err, wantBody)
			}
			// Appended after what a buffer holds, too small to take it
			// without growing, and leaving the prefix as it was.
			prefix := []byte("POST /x HTTP/1.1\r\n\r\n")
			appended, err := ps.AppendPostBody(prefix[:len(prefix):len(prefix)], m)
			if err != nil || string(appended) != string(prefix)+string(wantBody) {
				t.Fatalf("%T AppendPostBody = %q, %v; want the prefix and %q", p, appended, err, wantBody)
			}
			u, h, err := ps.PostTarget()
			if err != nil || !reflect.DeepEqual(*u, *got.URL) || !reflect.DeepEqual(h, got.Header) || got.Method != http.MethodPost {
				t.Fatalf("%T PostTarget = %v %v %v; Build's request %s %v %v", p, u, h, err, got.Method, got.URL, got.Header)
			}
		}
		var ref bytes.Buffer
		enc := json.NewEncoder(&ref)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(text); err != nil {
			t.Fatal(err)
		}
		if js := appendJSONString(nil, text); string(js) != strings.TrimSuffix(ref.String(), "\n") {
			t.Fatalf("appendJSONString(%q) = %s, encoding/json %s", text, js, ref.Bytes())
		}
	})
}

// benchmarkedProviders are the fixed-shape providers, one with a
// configured sender and Twilio both ways.
func benchmarkedProviders(tb testing.TB) []Provider {
	tb.Helper()
	mk := func(p Provider, err error) Provider {
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}
	return []Provider{
		mk(NewClickatellOne(Config{Token: testToken})),
		mk(NewClickatellOne(Config{Token: testToken, From: "Guest Wifi"})),
		mk(NewClickatellPlatform(Config{Token: testToken})),
		mk(NewClickatellREST(Config{Token: testToken})),
		mk(NewClickatellREST(Config{Token: testToken, From: "+1 555 000 1111"})),
		mk(NewTwilio(Config{Token: testToken, From: "+15550001111"}, TwilioConfig{AccountSID: "AC0123456789abcdef0123456789abcdef"})),
		mk(NewTwilio(Config{Token: testToken}, TwilioConfig{AccountSID: "AC0123456789abcdef0123456789abcdef",
			APIKeySID: "SK0123456789abcdef0123456789abcdef", MessagingServiceSID: "MG0123456789abcdef0123456789abcdef"})),
	}
}

// TestBuiltHeadersAreIndependent: the requests of one provider share their
// fixed header values, so what one sender does to its request's header
// (Set, Add, Del, as the deliver package and net/http do) must not reach
// the next request.
func TestBuiltHeadersAreIndependent(t *testing.T) {
	m := Message{To: []string{"15551234567"}, Text: "hello there"}
	for _, p := range benchmarkedProviders(t) {
		first, second := build(t, p, m).req, build(t, p, m).req
		want := second.Header.Clone()
		first.Header.Set("Content-Type", "text/evil")
		first.Header.Add("Accept", "text/html")
		first.Header.Add("Authorization", "Bearer stolen")
		first.Header.Del("Accept")
		third := build(t, p, m).req
		if !reflect.DeepEqual(second.Header, want) || !reflect.DeepEqual(third.Header, want) {
			t.Errorf("%T: changing one request's header changed another's: %v, %v, want %v", p, second.Header, third.Header, want)
		}
	}
}

// TestBuiltURLsAreIndependent: every request has a URL of its own (copied
// from the provider's, made once), so a sender that changes one changes
// no other.
func TestBuiltURLsAreIndependent(t *testing.T) {
	m := Message{To: []string{"15551234567"}, Text: "hello there"}
	for _, p := range benchmarkedProviders(t) {
		first := build(t, p, m).req
		want := *first.URL
		first.URL.Host, first.URL.Path, first.Host = "evil.example", "/stolen", "evil.example"
		second := build(t, p, m).req
		if *second.URL != want || second.Host != want.Host {
			t.Errorf("%T: changing one request's URL changed the next: %v (Host %q), want %v", p, second.URL, second.Host, &want)
		}
	}
}

// TestPostersRefuseWhatBuildRefuses: a message Build cannot make a request
// of, PostBody refuses with the same error, and a provider whose requests
// are not one fixed POST (the template's headers are templates) is no
// Poster, so its requests always go through Build.
func TestPostersRefuseWhatBuildRefuses(t *testing.T) {
	bad := []Message{
		{Text: "no recipient"},
		{To: []string{"15551234567"}},
		{To: make([]string, 1001), Text: "too many"},
	}
	for _, p := range benchmarkedProviders(t) {
		ps, ok := p.(Poster)
		if !ok {
			t.Fatalf("%T is not a Poster", p)
		}
		for _, m := range bad {
			_, buildErr := p.Build(context.Background(), m)
			_, postErr := ps.PostBody(m)
			if buildErr == nil || postErr == nil || buildErr.Error() != postErr.Error() {
				t.Errorf("%T, %d recipients, text %q: Build %v, PostBody %v", p, len(m.To), m.Text, buildErr, postErr)
			}
			dst := []byte("kept")
			if got, err := ps.AppendPostBody(dst, m); err == nil || err.Error() != postErr.Error() || string(got) != "kept" {
				t.Errorf("%T, %d recipients: AppendPostBody = %q, %v; want %q and PostBody's error", p, len(m.To), got, err, "kept")
			}
		}
	}
	tmpl, err := NewTemplate(Config{Token: testToken, Endpoint: &url.URL{Scheme: "https", Host: "gw.test", Path: "/send"}},
		TemplateConfig{Auth: "bearer", Body: map[string]any{"to": "{{.To}}", "text": "{{.Text}}"}, IDPointer: "/result/id"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := Provider(tmpl).(Poster); ok {
		t.Error("the template provider is a Poster; its headers are per-message templates")
	}
}
