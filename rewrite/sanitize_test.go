package rewrite

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizeProviderString(t *testing.T) {
	const pw = "Your password is k7Q2-zebra"
	long := strings.Repeat("x", 195)
	for _, tc := range []struct {
		name, s, text, want string
	}{
		{"plain wording stays", "Bad parameter", pw, "Bad parameter"},
		{"empty", "", pw, ""},
		{"whole echo", "Cannot send 'Your password is k7Q2-zebra'", pw, "Cannot send '[text]'"},
		{"echo in another case", "cannot send YOUR PASSWORD IS K7Q2-ZEBRA!", pw, "cannot send [text]!"},
		{"partial echo", "rejected near: word is k7", pw, "rejected near: [text]"},
		{"five characters are an echo", "x zebra x", pw, "x [text] x"},
		{"four characters are not", "x zebr x", pw, "x zebr x"},
		{"two echoes", "k7Q2- and -ZEBRA", pw, "[text] and [text]"},
		{"seven digits", "To 1234567 failed", "", "To [number] failed"},
		{"six digits stay", "code 123456", "", "code 123456"},
		{"a number in code", "4477009001234", pw, "[number]"},
		{"phone number in wording", "The 'To' number +447700900123 is not valid", pw, "The 'To' number +[number] is not valid"},
		{"digits run into an echo", "zebra1234567", pw, "[text]"},
		{"Arabic-Indic digits", "رقم ٠١٢٣٤٥٦٧٨", "", "رقم [number]"},
		{"Arabic text echoed", "خطأ: كلمة المرور", "كلمة المرور هي ٤٢", "خطأ: [text]"},
		{"emoji text echoed", "bad content 🔐 xyz9🔑", "key 🔐 xyz9🔑 now", "bad content[text]"},
		{"Greek in another case with final sigma", "error ΟΔΥΣΣΕΥΣ", "οδυσσευς", "error [text]"},
		{"Kelvin sign folds to K", "\u212Aelvin", "kelvin", "[text]"},
		{"German capitals", "ÄÖÜ STRASSE", "äöü strasse", "[text]"},
		{"short text is not matched", "k7Q2 k7Q2", "k7Q2", "k7Q2 k7Q2"},
		{"invalid UTF-8 becomes U+FFFD", "bad \xff\xfe byte", "", "bad \uFFFD\uFFFD byte"},
		{"cut at 200 characters", strings.Repeat("é", 300), "", strings.Repeat("é", 200)},
		{"a number straddling the cut is not half shown", long + "4477009001234", "", long},
		{"an echo straddling the cut is not half shown", strings.Repeat("y", 198) + "zebra", pw, strings.Repeat("y", 198)},
		{"a marker that fits the cut is kept", strings.Repeat("y", 192) + "1234567", "", strings.Repeat("y", 192) + "[number]"},
		{"a huge digit run is one marker", strings.Repeat("9", 100000), "", "[number]"},
		{"a huge echo is one marker", strings.Repeat("zebra", 20000) + " then words", pw, "[text]"},
	} {
		got := SanitizeProviderString(tc.s, tc.text)
		if got != tc.want {
			t.Errorf("%s: SanitizeProviderString(%.40q, %q) = %.80q, want %.80q", tc.name, tc.s, tc.text, got, tc.want)
		}
		if n := utf8.RuneCountInString(got); n > MaxProviderString || !utf8.ValidString(got) {
			t.Errorf("%s: %d characters, valid UTF-8 %v", tc.name, n, utf8.ValidString(got))
		}
	}
}

// TestSanitizeHugeStringReadsABoundedPrefix: a multi-megabyte provider
// string is cut from a bounded prefix; an echo or a number past it cannot
// surface, and the end of the prefix is not shown half-decided.
func TestSanitizeHugeStringReadsABoundedPrefix(t *testing.T) {
	const text = "Your password is k7Q2-zebra"
	s := strings.Repeat("9", 3000) + strings.Repeat("a", 5<<20) + "Your password"
	if got := SanitizeProviderString(s, text); got != "[number]" {
		t.Errorf("got %.60q, want only the marker (the rest is past the scanned prefix)", got)
	}
	// The scanned prefix ends inside a digit run of which only a few
	// digits were seen: none of them is shown.
	// (790 digits become one marker, so the output is short enough to
	// show the prefix's end.)
	s = strings.Repeat("9", 790) + "x" + strings.Repeat("a", 10) + "1234567890"
	if got, want := SanitizeProviderString(s, ""), "[number]x"+strings.Repeat("a", 10); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// naiveSanitize is the rule written out the slow, obvious way over the
// whole string: mask each 7+ digit run and each window of 5 characters
// that equals (EqualFold) some 5 characters of text, then cut.
func naiveSanitize(s, text string) string {
	var rs []rune
	for _, r := range s { // one U+FFFD per invalid byte
		rs = append(rs, r)
	}
	tr := []rune(text)
	kind := make([]int, len(rs))
	digit := regexp.MustCompile(`^\p{Nd}$`)
	for i := 0; i < len(rs); {
		j := i
		for j < len(rs) && digit.MatchString(string(rs[j])) {
			j++
		}
		if j-i >= 7 {
			for k := i; k < j; k++ {
				kind[k] = 1
			}
		}
		i = max(j, i+1)
	}
	for i := 0; i+5 <= len(rs); i++ {
		for j := 0; j+5 <= len(tr); j++ {
			if strings.EqualFold(string(rs[i:i+5]), string(tr[j:j+5])) {
				for k := i; k < i+5; k++ {
					kind[k] = 2
				}
				break
			}
		}
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(rs); {
		if kind[i] == 0 {
			if n+1 > 200 {
				break
			}
			b.WriteRune(rs[i])
			n, i = n+1, i+1
			continue
		}
		mark, j := "[number]", i
		for ; j < len(rs) && kind[j] != 0; j++ {
			if kind[j] == 2 {
				mark = "[text]"
			}
		}
		if n+len(mark) > 200 {
			break
		}
		b.WriteString(mark)
		n, i = n+len(mark), j
	}
	return b.String()
}

// FuzzSanitizeProviderString checks the fast masker against the naive one
// on strings short enough to be scanned whole.
func FuzzSanitizeProviderString(f *testing.F) {
	f.Add("Cannot send 'YOUR PASSWORD IS k7q2'", "Your password is k7Q2")
	f.Add("To +447700900123: invalid", "hello there")
	f.Add("ΟΔΥΣΣΕΥΣ ٠١٢٣٤٥٦٧٨ \u212Aelvin", "οδυσσευς kelvin")
	f.Add(strings.Repeat("ab", 150)+"1234567", "xxabab")
	f.Add("\xff\xfe\xfd\xfc\xfb\xfa 🔐 xyz9🔑", "🔐 xyz9🔑 \xff")
	f.Fuzz(func(t *testing.T, s, text string) {
		if utf8.RuneCountInString(s) > scanFactor*MaxProviderString || utf8.RuneCountInString(text) > 300 {
			return
		}
		text = strings.ToValidUTF8(text, "\uFFFD") // Message.Text is valid UTF-8
		got, want := SanitizeProviderString(s, text), naiveSanitize(s, text)
		if got != want {
			t.Fatalf("SanitizeProviderString(%q, %q)\n got %q\nwant %q", s, text, got, want)
		}
	})
}

func TestReadableMessageID(t *testing.T) {
	for id, want := range map[string]bool{
		"a55b8f8d56f33440e993aa614c68bf8b":   true,
		"SM0123456789abcdef0123456789abcdef": true,
		"batch-0123456789":                   true,
		"a.b_c:d-E":                          true,
		strings.Repeat("a", 64):              true,
		strings.Repeat("a", 65):              false,
		"":                                   false,
		"abc def":                            false,
		`abc"def`:                            false,
		"abc'def":                            false,
		"abc\ndef":                           false,
		"abc\r":                              false,
		"abc\x00":                            false,
		"<b>":                                false,
		"+447700900123":                      false,
		"a/b":                                false,
		"é":                                  false,
		"Your password is k7Q2":              false,
	} {
		if got := ReadableMessageID(id); got != want {
			t.Errorf("ReadableMessageID(%q) = %v, want %v", id, got, want)
		}
	}
}

// readers are every provider, each with a function that wraps a message id
// into a 2xx reply accepting one recipient.
func readers(t *testing.T) map[string]struct {
	p      Provider
	status int
	reply  func(id string) string
} {
	t.Helper()
	must := func(p Provider, err error) Provider {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	entry := func(id string) string {
		return `{"messages":[{"apiMessageId":` + jsonQuote(id) + `,"accepted":true,"to":"15551234567"}],"error":null}`
	}
	return map[string]struct {
		p      Provider
		status int
		reply  func(id string) string
	}{
		"clickatell-one":      {must(NewClickatellOne(Config{Token: testToken})), 202, entry},
		"clickatell-platform": {must(NewClickatellPlatform(Config{Token: testToken})), 202, entry},
		"clickatell-rest": {must(NewClickatellREST(Config{Token: testToken})), 202, func(id string) string {
			return `{"data":{"message":[{"accepted":true,"to":"15551234567","apiMessageId":` + jsonQuote(id) + `}]}}`
		}},
		"twilio": {must(NewTwilio(Config{Token: testToken, From: "+15550001111"}, TwilioConfig{AccountSID: "AC0123456789abcdef0123456789abcdef"})), 201, func(id string) string {
			return `{"sid":` + jsonQuote(id) + `,"status":"queued"}`
		}},
		"template": {must(NewTemplate(Config{Token: testToken, Endpoint: &url.URL{Scheme: "https", Host: "gw.test", Path: "/send"}}, TemplateConfig{Auth: "bearer", Body: map[string]any{"to": "{{.To}}", "text": "{{.Text}}"}, IDPointer: "/result/id"})), 201,
			func(id string) string { return `{"result":{"id":` + jsonQuote(id) + `}}` }},
	}
}

func jsonQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestReadUnreadableMessageIDIsUnknown: for every provider, an accepted
// message whose id is not readable is outcome unknown with ERR: 901
// "Provider reply unreadable, outcome unknown", and the id is quoted
// nowhere.
func TestReadUnreadableMessageIDIsUnknown(t *testing.T) {
	m := Message{To: []string{"15551234567"}, Text: "Your password is k7Q2-zebra"}
	for name, rd := range readers(t) {
		for _, id := range []string{
			"Your password is k7Q2-zebra",
			"abc def",
			`abc"def`,
			"abc'def",
			"abc\ndef",
			"<script>",
			strings.Repeat("a", 65),
			strings.Repeat("7", 65),
			"id\u00e9",
		} {
			r := rd.p.Read(m, Response{Status: rd.status, Body: []byte(rd.reply(id))}).Recipients[0]
			e := r.Err
			if r.ID != "" || e == nil || e.Outcome != Unknown || e.Status != http.StatusBadGateway || e.Code != CodeInternal ||
				e.Description != "Provider reply unreadable, outcome unknown" || e.Failover {
				t.Errorf("%s: id %q: got id %q, error %+v; want unknown 502 901 \"Provider reply unreadable, outcome unknown\"", name, id, r.ID, e)
				continue
			}
			if strings.Contains(e.Error(), id) {
				t.Errorf("%s: id %q: the cause quotes it: %v", name, id, e)
			}
		}
	}
}

// TestReadMasksMessageIDs: for every provider, a readable id is passed on
// as it is, except for echoes of the text and a recipient's number.
func TestReadMasksMessageIDs(t *testing.T) {
	m := Message{To: []string{"15551234567"}, Text: "Your code is ZEBRA-9x"}
	for name, rd := range readers(t) {
		for id, want := range map[string]string{
			"a55b8f8d56f33440e993aa614c68bf8b":   "a55b8f8d56f33440e993aa614c68bf8b",
			"SM9876543210fedcba9876543210fedcba": "SM9876543210fedcba9876543210fedcba", // digits, but no recipient's
			"batch-9876543210":                   "batch-9876543210",
			"id-zebra-9x":                        "id-[text]",
			"ZEBRA":                              "[text]",
			"15551234567":                        "[number]",
			"msg-0015551234567-1":                "msg-[number]", // the group after it joins the run
			"1-555-123-4567":                     "[number]",     // a number written in groups
			"id.555.1234.567.x":                  "id.[number].x",
			"06_1555_123_4567":                   "[number]",
			"a55b-8f8d-5633-4ac0":                "a55b-8f8d-5633-4ac0", // grouped digits, no recipient's
			"x5551234567y":                       "x[number]y",          // national form
			"x5551234y":                          "x5551234y",           // 7 digits of it only: a coincidence
			"SM0123456789abcdef0123456789abcdef": "SM0123456789abcdef0123456789abcdef",
			"code.is.zebra":                      "code.is.[text]",
		} {
			r := rd.p.Read(m, Response{Status: rd.status, Body: []byte(rd.reply(id))}).Recipients[0]
			if r.Err != nil || r.ID != want {
				t.Errorf("%s: id %q: got %q, %v; want %q", name, id, r.ID, r.Err, want)
			}
		}
	}
}

// TestReadSanitizesProviderErrors: an error code holding a number and a
// description echoing the text (in another case, in part) reach the cause
// masked, for every provider that reads them.
func TestReadSanitizesProviderErrors(t *testing.T) {
	m := Message{To: []string{"447700900123"}, Text: "Your password is k7Q2-zebra"}
	one, _ := NewClickatellOne(Config{Token: testToken})
	rest, _ := NewClickatellREST(Config{Token: testToken})
	tw, _ := NewTwilio(Config{Token: testToken, From: "+15550001111"}, TwilioConfig{AccountSID: "AC0123456789abcdef0123456789abcdef"})
	tmpl, _ := NewTemplate(Config{Token: testToken, Endpoint: &url.URL{Scheme: "https", Host: "gw.test", Path: "/send"}}, TemplateConfig{Auth: "bearer", Body: map[string]any{"text": "{{.Text}}"}, ErrorPointer: "/error"})
	for _, tc := range []struct {
		name   string
		p      Provider
		status int
		body   string
	}{
		{"one: code is the number", one, 400, `{"messages":[],"error":{"code":"447700900123","description":"cannot send YOUR PASSWORD IS K7Q2-ZEBRA"}}`},
		{"one: partial echo per entry", one, 202, `{"messages":[{"accepted":false,"to":"447700900123","error":{"code":4477009001,"description":"rejected: word is k7q2"}}],"error":null}`},
		{"rest: errorDescription sibling", rest, 400, `{"error":null,"errorCode":"0447700900123","errorDescription":"Password Is K7Q2-Zebra"}`},
		{"twilio: error message echo", tw, 400, `{"code":447700900123,"message":"The message 'your password is k7q2-zebra' to +447700900123 failed","status":400}`},
		{"twilio: failed in 201", tw, 201, `{"sid":"SMx","status":"failed","error_code":"447700900123","error_message":"password is k7"}`},
		{"template: error pointer", tmpl, 200, `{"error":"No credit for 447700900123: your password is k7Q2"}`},
	} {
		r := tc.p.Read(m, Response{Status: tc.status, Body: []byte(tc.body)}).Recipients[0]
		if r.Err == nil || r.Err.Cause == nil {
			t.Errorf("%s: got %+v, want an error with a cause", tc.name, r)
			continue
		}
		cause := r.Err.Error()
		if regexp.MustCompile(`[0-9]{7}`).MatchString(cause) {
			t.Errorf("%s: a 7-digit run reaches the cause: %s", tc.name, cause)
		}
		for _, frag := range []string{"password", "k7q2", "zebra", "word is"} {
			if strings.Contains(strings.ToLower(cause), frag) {
				t.Errorf("%s: %q of the text reaches the cause: %s", tc.name, frag, cause)
			}
		}
		if !strings.Contains(cause, "[text]") && !strings.Contains(cause, "[number]") {
			t.Errorf("%s: the cause shows no mask: %s", tc.name, cause)
		}
	}
}

// TestSanitizeProviderErrorKeepsTheChain: the wrapper changes the text only.
func TestSanitizeProviderErrorKeepsTheChain(t *testing.T) {
	inner := &url.Error{Op: "Post", URL: "https://127.0.0.1:1/x", Err: http.ErrHandlerTimeout}
	err := SanitizeProviderError(inner, "Your password is k7Q2-zebra", MaxProviderErrorDetail)
	var ue *url.Error
	if !errors.As(err, &ue) || ue != inner {
		t.Errorf("errors.As lost the *url.Error")
	}
	if SanitizeProviderError(nil, "x", MaxProviderErrorDetail) != nil {
		t.Error("nil error became non-nil")
	}
	malformed := &url.Error{Op: "Post", URL: "https://127.0.0.1:1/x", Err: errors.New(`malformed HTTP response "YOUR PASSWORD IS K7Q2-ZEBRA to 447700900123` + strings.Repeat("!", 2000) + `"`)}
	got := SanitizeProviderError(malformed, "Your password is k7Q2-zebra", MaxProviderErrorDetail).Error()
	if strings.Contains(strings.ToLower(got), "password") || strings.Contains(got, "447700900123") || utf8.RuneCountInString(got) > MaxProviderErrorDetail {
		t.Errorf("got %q", got)
	}
}
