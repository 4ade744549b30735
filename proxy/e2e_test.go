package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

const (
	testToken    = "tok-SECRET-4f1e9c2a7b"
	legacyUser   = "iseuser-LEGACY"
	legacyPass   = "isepass-LEGACY-pw"
	legacyAPIID  = "3141592-LEGACY"
	clickatellIn = "api.clickatell.com"
)

// oneAPIReply answers like Clickatell's One API: 202 with one accepted entry
// per message, ids derived from a counter.
func oneAPIReply() func(w http.ResponseWriter, r received) {
	var n atomic.Int64
	return func(w http.ResponseWriter, r received) {
		var body struct {
			Messages []struct{ To string } `json:"messages"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"messages":[],"error":{"code":21,"description":"Payload malformed"}}`)
			return
		}
		type entry struct {
			APIMessageID string  `json:"apiMessageId"`
			Accepted     bool    `json:"accepted"`
			To           string  `json:"to"`
			Error        *string `json:"error"`
		}
		out := struct {
			Messages []entry `json:"messages"`
			Error    *string `json:"error"`
		}{}
		for _, m := range body.Messages {
			out.Messages = append(out.Messages, entry{APIMessageID: fmt.Sprintf("one%029d", n.Add(1)), Accepted: true, To: m.To})
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(out)
	}
}

// restReply answers like Clickatell's legacy REST API.
func restReply() func(w http.ResponseWriter, r received) {
	var n atomic.Int64
	return func(w http.ResponseWriter, r received) {
		var body struct {
			To []string `json:"to"`
		}
		json.Unmarshal(r.Body, &body)
		type entry struct {
			Accepted     bool   `json:"accepted"`
			To           string `json:"to"`
			APIMessageID string `json:"apiMessageId"`
		}
		var msgs []entry
		for _, to := range body.To {
			msgs = append(msgs, entry{true, to, fmt.Sprintf("rest%028d", n.Add(1))})
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"message": msgs}})
	}
}

// legacyQuery builds the query ISE sends, text last as ISE appends it.
func legacyQuery(to, text string) string {
	return "user=" + legacyUser + "&password=" + legacyPass + "&api_id=" + legacyAPIID +
		"&to=" + url.QueryEscape(to) + "&text=" + url.QueryEscape(text)
}

func env() map[string]string { return map[string]string{"TEST_TOKEN": testToken} }

// TestThreeWaysIn: the same legacy GET, sent as a proxy request, as a direct
// request and with the provider's Host header, becomes the same One API POST.
func TestThreeWaysIn(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	cfg := routeConfig(fp.CAFile(t), "clickatell", "clickatell-one", fp.URL("/v1/message"), "") + `
[[route]]
name = "direct"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "` + fp.URL("/v1/message") + `"
token = "env:TEST_TOKEN"
`
	p := startPostern(t, cfg, env())
	for i, mode := range []string{"proxy", "direct", "dns"} {
		t.Run(mode, func(t *testing.T) {
			status, body := p.Get(t, mode, clickatellIn, "/http/sendmsg?"+legacyQuery("+1 (555) 123-4567", "Your password is abc123"))
			want := fmt.Sprintf("ID: one%029d\n", i+1)
			if status != http.StatusOK || body != want {
				t.Fatalf("reply: got %d %q, want 200 %q", status, body, want)
			}
			reqs := fp.Requests()
			if len(reqs) != i+1 {
				t.Fatalf("provider got %d requests, want %d", len(reqs), i+1)
			}
			got := reqs[i]
			if got.Method != http.MethodPost || got.Path != "/v1/message" || got.Query != "" {
				t.Errorf("provider request line: got %s %s?%s, want POST /v1/message", got.Method, got.Path, got.Query)
			}
			for k, v := range map[string]string{"Authorization": testToken, "Content-Type": "application/json", "Accept": "application/json"} {
				if got.Header.Get(k) != v {
					t.Errorf("provider header %s: got %q, want %q", k, got.Header.Get(k), v)
				}
			}
			var sent struct {
				Messages []map[string]string `json:"messages"`
			}
			if err := json.Unmarshal(got.Body, &sent); err != nil {
				t.Fatalf("provider body %q: %v", got.Body, err)
			}
			wantMsg := map[string]string{"channel": "sms", "to": "15551234567", "content": "Your password is abc123"}
			if len(sent.Messages) != 1 || fmt.Sprint(sent.Messages[0]) != fmt.Sprint(wantMsg) {
				t.Errorf("provider body: got %s, want one message %v", got.Body, wantMsg)
			}
		})
	}
	wantRoutes := []string{`"route":"clickatell"`, `"route":"direct"`, `"route":"clickatell"`}
	lines := strings.Split(strings.TrimSpace(p.Audit.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("audit: got %d lines, want 3:\n%s", len(lines), p.Audit)
	}
	for i, l := range lines {
		if !strings.Contains(l, wantRoutes[i]) || !strings.Contains(l, `"outcome":"delivered"`) || !strings.Contains(l, `"to":["*******4567"]`) {
			t.Errorf("audit line %d: got %s, want %s, delivered, masked number", i, l, wantRoutes[i])
		}
	}
}

// hostileTexts are message texts that break naive encoders.
var hostileTexts = map[string]string{
	"quotes":    `He said "hi" and 'bye'`,
	"backslash": `C:\temp\new \n not a newline \u0041`,
	"ampersand": "Tom & Jerry & co",
	"plus":      "1+1=2 +44",
	"percent":   "100% sure %20 %zz %",
	"hash":      "#1 #hashtag",
	"newline":   "line one\nline two\r\nline three",
	"tab":       "col1\tcol2",
	"accents":   "Café crème à Zürich, ñandú",
	"emoji":     "Welcome 👋🏽 guest 🎉",
	"arabic":    "كلمة المرور الخاصة بك هي 1234",
	"json":      `{"text":"injected","to":["999"]}`,
	"html":      "<script>alert(1)</script> &amp;",
	"long459":   strings.Repeat("Guest Wi-Fi password: Zx9!q ", 17)[:459],
}

// TestHostileTextsReachProviderIntact: for each provider, every hostile text
// arrives at the provider exactly as ISE sent it, for two recipients.
func TestHostileTextsReachProviderIntact(t *testing.T) {
	for _, tc := range []struct {
		provider, path string
		reply          func() func(http.ResponseWriter, received)
		texts          func(body []byte) ([]string, []string, error)
		wantAuth       string
	}{
		{"clickatell-one", "/v1/message", oneAPIReply, oneAPIBody, testToken},
		{"clickatell-rest", "/rest/message", restReply, restBody, "Bearer " + testToken},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			fp := newFakeProvider(t, tc.reply())
			p := startPostern(t, routeConfig(fp.CAFile(t), "r", tc.provider, fp.URL(tc.path), ""), env())
			n := 0
			for name, text := range hostileTexts {
				status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567,+44 20 7946 0958", text))
				if status != http.StatusOK || strings.Count(body, "ID: ") != 2 || !strings.Contains(body, " To: 442079460958\n") {
					t.Errorf("%s: reply %d %q, want 200 with two ID lines", name, status, body)
					continue
				}
				n++
				got := fp.Requests()[n-1]
				if got.Header.Get("Authorization") != tc.wantAuth {
					t.Errorf("%s: Authorization %q, want %q", name, got.Header.Get("Authorization"), tc.wantAuth)
				}
				texts, tos, err := tc.texts(got.Body)
				if err != nil {
					t.Fatalf("%s: body %q: %v", name, got.Body, err)
				}
				for _, sent := range texts {
					if sent != text {
						t.Errorf("%s: provider got text %q, want %q", name, sent, text)
					}
				}
				if fmt.Sprint(tos) != "[15551234567 442079460958]" {
					t.Errorf("%s: provider got recipients %v", name, tos)
				}
				raw := got.Raw()
				mustNotContain(t, name+": provider request", raw, legacyUser, legacyPass, legacyAPIID)
			}
			mustNotContain(t, "log", p.Log.String(), testToken, legacyPass, legacyUser)
			mustNotContain(t, "audit", p.Audit.String(), testToken, legacyPass, legacyUser)
			for name, text := range hostileTexts {
				if len(text) > 6 {
					mustNotContain(t, "log/audit for "+name, p.Log.String()+p.Audit.String(), text)
				}
			}
		})
	}
}

func oneAPIBody(b []byte) (texts, tos []string, err error) {
	var body struct {
		Messages []struct{ To, Content, Channel string } `json:"messages"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, nil, err
	}
	for _, m := range body.Messages {
		texts, tos = append(texts, m.Content), append(tos, m.To)
	}
	return texts, tos, nil
}

func restBody(b []byte) (texts, tos []string, err error) {
	var body struct {
		Text string   `json:"text"`
		To   []string `json:"to"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return nil, nil, err
	}
	return []string{body.Text}, body.To, nil
}
