package proxy_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/postern/postern/proxy/config"
)

// vonageTemplate is docs/template-vonage.md's route body: Vonage's SMS API
// takes a form with the key and secret in it and answers 200 even when it
// refuses, with messages[0].error-text.
const vonageTemplate = `
from = "Guest WiFi"
content_type = "form"
auth = "none"
id_pointer = "/messages/0/message-id"
error_pointer = "/messages/0/error-text"
body = { api_key = "a1b2c3d4", api_secret = "{{.Token}}", from = "{{.From}}", to = "{{.ToDigits}}", text = "{{.Text}}", type = "unicode" }
`

// TestTemplateBodiesCarryHostileTexts: a JSON and a form gateway each get
// every hostile text intact, encoded by the content type's own encoder.
func TestTemplateBodiesCarryHostileTexts(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		reply       canned
		read        func(t *testing.T, r received) (text, to string)
	}{
		{"json (sinch-style)", sinchTemplate, canned{201, `{"id":"batch1"}`}, func(t *testing.T, r received) (string, string) {
			var b struct {
				Body string   `json:"body"`
				To   []string `json:"to"`
			}
			if err := json.Unmarshal(r.Body, &b); err != nil || len(b.To) != 1 {
				t.Fatalf("body %s: %v", r.Body, err)
			}
			return b.Body, b.To[0]
		}},
		{"form (vonage)", vonageTemplate, canned{200, `{"message-count":"1","messages":[{"to":"15551234567","message-id":"0A0000000123ABCD1","status":"0"}]}`}, func(t *testing.T, r received) (string, string) {
			if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type %q", ct)
			}
			f, err := url.ParseQuery(string(r.Body))
			if err != nil {
				t.Fatalf("body %s: %v", r.Body, err)
			}
			if f.Get("api_secret") != testToken || f.Get("api_key") != "a1b2c3d4" || f.Get("from") != "Guest WiFi" || f.Get("type") != "unicode" || len(f) != 6 {
				t.Errorf("form fields %v", f)
			}
			return f.Get("text"), f.Get("to")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFakeProvider(t, reply(tc.reply))
			p := startPostern(t, routeConfig(fp.CAFile(t), "gw", "template", fp.URL("/send"), tc.extra), env())
			for name, text := range hostileTexts {
				before := len(fp.Requests())
				status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", text))
				if status != 200 || !strings.HasPrefix(body, "ID: ") {
					t.Errorf("%s: ISE got %d %q", name, status, body)
					continue
				}
				got, to := tc.read(t, fp.Requests()[before])
				if got != text {
					t.Errorf("%s: gateway got text %q, want %q", name, got, text)
				}
				if to != "+15551234567" && to != "15551234567" {
					t.Errorf("%s: gateway got to %q", name, to)
				}
			}
			for name, text := range hostileTexts {
				if len(text) > 6 {
					mustNotContain(t, "log/audit for "+name, p.Log.String()+p.Audit.String(), text)
				}
			}
		})
	}
}

// TestTemplateVonageRefusalIn200: Vonage says no inside a 200; the error
// pointer catches it, and the refusal is not failed over (it is about the
// message, not the provider).
func TestTemplateVonageRefusalIn200(t *testing.T) {
	fp := newFakeProvider(t, reply(canned{200, `{"message-count":"1","messages":[{"status":"3","error-text":"Invalid to address: 15551234567"}]}`}))
	p := startPostern(t, routeConfig(fp.CAFile(t), "gw", "template", fp.URL("/send"), vonageTemplate), env())
	status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "hi"))
	if status != http.StatusBadGateway || body != "ERR: 901, Upstream error\n" {
		t.Errorf("got %d %q", status, body)
	}
	if a := p.Audit.String(); !strings.Contains(a, `Invalid to address: [number]`) {
		t.Errorf("audit should carry the gateway's reason with the number masked:\n%s", a)
	}
}

// TestTemplateUnknownFieldIsCheckError: a template naming a field messages
// do not have is a config error pointing at its line.
func TestTemplateUnknownFieldIsCheckError(t *testing.T) {
	cfg := `[[route]]
name = "gw"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "template"
endpoint = "https://127.0.0.1:9/send"
token = "k"
auth = "bearer"
[route.body]
to = "{{.To}}"
text = "{{.Txt}}"
[route.headers]
X-Trace = "{{.Tracking}}"
`
	_, err := config.Load("t.toml", []byte(cfg), config.LoadOptions{})
	if err == nil {
		t.Fatal("config loaded, want an error")
	}
	for _, want := range []string{"t.toml:11:1: ", `can't evaluate field Txt`, "t.toml:13:1: ", `can't evaluate field Tracking`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
