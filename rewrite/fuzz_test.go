package rewrite

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// fixedVocabulary is every description Parse can produce; a text that is a
// substring of it cannot be told apart from it, so the echo check skips it.
var fixedVocabulary = strings.Join([]string{
	descMalformed, descMissingTo, descTooMany, descMethod, descContentType, descEmpty, descDestination, descUnicode,
	"in request body", "in query", "in recipients", "recipient", "number", "unicode text", "text is not valid UTF-8",
	"text contains a control character", "text contains a Unicode noncharacter", "more than",
}, "\n")

// textValues returns every form the text may take in the input: raw and
// decoded text= values from query and body, and the whole body.
func textValues(rawQuery string, body []byte) []string {
	var out []string
	for _, s := range []string{rawQuery, string(body)} {
		for pair := range strings.SplitSeq(s, "&") {
			k, v, _ := strings.Cut(pair, "=")
			if k != "text" {
				continue
			}
			out = append(out, v)
			if d, err := url.QueryUnescape(v); err == nil {
				out = append(out, d)
			}
		}
	}
	out = append(out, string(body))
	if d, err := url.QueryUnescape(string(body)); err == nil {
		out = append(out, d)
	}
	return out
}

func FuzzParseClickatellHTTP(f *testing.F) {
	f.Add(iseCreds+"&to=15551234567&text=Your+password+is+abc123", []byte(nil), "GET")
	f.Fuzz(func(t *testing.T, rawQuery string, body []byte, method string) {
		in := Inbound{Method: method, RawQuery: rawQuery, Body: body}
		if method == http.MethodPost {
			in.ContentType = formContentType
		}
		// Without and with a default country (the one that read a literal
		// "+4915..." as a German national number, issue 10) and a limit.
		m, err := ClickatellHTTP{}.Parse(in)
		if err == nil {
			if mDE, errDE := (ClickatellHTTP{DefaultCountry: "DE", MaxRecipients: 10}).Parse(in); errDE == nil {
				checkParsed(t, rawQuery, body, method, mDE)
			}
			checkParsed(t, rawQuery, body, method, m)
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Parse(%q, %q, %q): got %T %v, want *Error", rawQuery, body, method, err, err)
		}
		if e.Status < 400 || e.Status > 499 || e.Outcome != Refused {
			t.Fatalf("Parse(%q, %q, %q): got status %d outcome %v, want 4xx refused", rawQuery, body, method, e.Status, e.Outcome)
		}
		for _, v := range textValues(rawQuery, body) {
			if len(v) < 8 || strings.Contains(fixedVocabulary, v) {
				continue
			}
			if strings.Contains(e.Error(), v) || strings.Contains(e.Description, v) {
				t.Fatalf("Parse(%q, %q, %q): error %q echoes text %q", rawQuery, body, method, e.Error(), v)
			}
		}
	})
}

// checkParsed holds a parsed message to what the rest of postern relies
// on: 7-15 digit recipients in their canonical E.164 form (one rate-limit
// key per handset; providers re-check it), no duplicates, and a non-empty
// text a handset can show.
func checkParsed(t *testing.T, rawQuery string, body []byte, method string, m Message) {
	t.Helper()
	if len(m.To) == 0 {
		t.Fatalf("Parse(%q, %q, %q): no recipients", rawQuery, body, method)
	}
	seen := map[string]bool{}
	for _, to := range m.To {
		if len(to) < 7 || len(to) > 15 || strings.Trim(to, "0123456789") != "" || to[0] == '0' {
			t.Fatalf("Parse(%q, %q, %q): recipient %q, want 7-15 digits", rawQuery, body, method, to)
		}
		if n, err := NormalizeNumber(to); err != nil || n != to {
			t.Fatalf("Parse(%q, %q, %q): recipient %q is not canonical (%q, %v)", rawQuery, body, method, to, n, err)
		}
		if seen[to] {
			t.Fatalf("Parse(%q, %q, %q): recipient %q twice", rawQuery, body, method, to)
		}
		seen[to] = true
	}
	if m.Text == "" || !utf8.ValidString(m.Text) || checkText(m.Text) != nil {
		t.Fatalf("Parse(%q, %q, %q): text %q, want non-empty valid UTF-8 without control characters", rawQuery, body, method, m.Text)
	}
}

func FuzzClickatellRead(f *testing.F) {
	f.Add(202, []byte(`{"data":{"message":[{"accepted":true,"to":"15551234567","apiMessageId":"x"}]}}`))
	f.Add(207, []byte(`{"messages":[{"accepted":false,"to":"+447700900123","error":"Invalid destination address."}],"error":null}`))
	f.Add(400, []byte(`{"error":{"code":43,"description":"Rate limit"},"errorCode":[1],"errorDescription":{}}`))
	f.Add(200, []byte(`{"error":[null,{"code":"001"}]}`))
	rest, _ := NewClickatellREST(Config{Token: "k"})
	oneAPI, _ := NewClickatellOne(Config{Token: "k"})
	m := Message{To: []string{"15551234567", "447700900123"}, Text: "secret text"}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		for _, p := range []Provider{rest, oneAPI} {
			res := p.Read(m, Response{Status: status, Body: body})
			if len(res.Recipients) != len(m.To) {
				t.Fatalf("Read(%d, %q): %d recipients, want %d", status, body, len(res.Recipients), len(m.To))
			}
			for i, r := range res.Recipients {
				if r.To != m.To[i] {
					t.Fatalf("Read(%d, %q): recipient %d is %q, want %q", status, body, i, r.To, m.To[i])
				}
				if r.Err != nil && (r.Err.Status != http.StatusBadGateway || strings.Contains(r.Err.Error(), m.Text)) {
					t.Fatalf("Read(%d, %q): error %v (status %d), want 502 without the text", status, body, r.Err, r.Err.Status)
				}
				if r.Err == nil && !json.Valid(body) {
					t.Fatalf("Read(%d, %q): delivered from a non-JSON reply", status, body)
				}
			}
		}
	})
}
