package rewrite

// The request parsing as it was before it stopped building maps (issue 13),
// kept as the reference the new parsing is fuzzed against
// (FuzzParseSameAsReference): the same messages, errors and credentials
// for every input.

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func refParseClickatellHTTP(d ClickatellHTTP, in Inbound) (Message, error) {
	params, text, err := refReadParams(in, "text", "to", refHasLegacyKey)
	if err != nil {
		return Message{}, err
	}
	to, err := refParseRecipients(params["to"], text, d.DefaultCountry, d.MaxRecipients)
	if err != nil {
		return Message{}, err
	}
	m := Message{To: to}
	if refFirst(params, "unicode") == "1" {
		var uerr error
		if text, uerr = decodeUCS2Hex(text); uerr != nil {
			return Message{}, httpParseError(http.StatusBadRequest, CodeInvalidUnicode, descUnicode, uerr)
		}
	}
	if err := checkText(text); err != nil {
		return Message{}, httpParseError(http.StatusBadRequest, CodeInvalidUnicode, descUnicode, err)
	}
	m.Text = text
	m.From, _ = normalizeSender(refFirst(params, "from"))
	m.Options = refParseOptions(params)
	return m, nil
}

func refReadParams(in Inbound, textKey, toKey string, isForm func(map[string][]string) bool) (map[string][]string, string, *Error) {
	var body map[string][]string
	switch in.Method {
	case http.MethodGet:
	case http.MethodPost:
		if ct := strings.ToLower(strings.TrimSpace(in.ContentType)); ct != "" && ct != formContentType {
			return nil, "", httpParseError(http.StatusUnsupportedMediaType, CodeMissingParams, descContentType, nil)
		}
		if len(in.Body) > 0 {
			var err error
			if body, err = refParseFormKeeping(string(in.Body), toKey); err != nil {
				return nil, "", httpParseError(http.StatusBadRequest, CodeMissingParams, descMalformed, errors.New("in request body"))
			}
		}
	default:
		return nil, "", httpParseError(http.StatusMethodNotAllowed, CodeMissingParams, descMethod, nil)
	}
	params, err := refParseFormKeeping(in.RawQuery, toKey)
	if err != nil {
		return nil, "", httpParseError(http.StatusBadRequest, CodeMissingParams, descMalformed, errors.New("in query"))
	}
	var text string
	if body != nil && refFirst(params, textKey) == "" && !isForm(body) {
		// The bare "$message$" POST. parseForm already proved the body
		// decodes, so this cannot fail.
		text, _ = url.QueryUnescape(string(in.Body))
	} else {
		for k, v := range body {
			params[k] = v
		}
		text = refFirst(params, textKey)
	}
	return params, text, nil
}

func refParseRecipients(values []string, text, defaultCountry string, max int) ([]string, *Error) {
	raw, err := refSplitRecipients(values, max)
	if err != nil {
		return nil, httpParseError(http.StatusBadRequest, CodeMissingParams, descMalformed, err)
	}
	if len(raw) == 0 {
		return nil, httpParseError(http.StatusBadRequest, CodeMissingParams, descMissingTo, nil)
	}
	if text == "" {
		return nil, httpParseError(http.StatusBadRequest, CodeEmptyMessage, descEmpty, nil)
	}
	if max > 0 && len(raw) > max {
		return nil, httpParseError(http.StatusBadRequest, CodeMissingParams, descTooMany, fmt.Errorf("more than %d", max))
	}
	var to []string
	seen := make(map[string]bool, len(raw))
	for i, n := range raw {
		d, err := recipientDigits(n.number, defaultCountry, n.plus)
		if err != nil {
			return nil, httpParseError(http.StatusBadRequest, CodeInvalidDestination, descDestination, fmt.Errorf("recipient %d: %w", i+1, err))
		}
		if !seen[d] {
			seen[d] = true
			to = append(to, d)
		}
	}
	return to, nil
}

// refRawRecipient is the old rawRecipient: the decoded entry as a string.
type refRawRecipient struct {
	number string
	plus   bool
}

func refSplitRecipients(values []string, max int) ([]refRawRecipient, error) {
	var out []refRawRecipient
	for _, v := range values {
		start := 0
		for i := 0; i <= len(v); {
			sep := 0 // length of the separator at i, 0 = none
			switch {
			case i == len(v):
				sep = 1
			case v[i] == ',':
				sep = 1
			case v[i] == '%' && i+2 < len(v) && v[i+1] == '2' && (v[i+2] == 'C' || v[i+2] == 'c'):
				sep = 3
			case v[i] == '%':
				i = min(i+3, len(v)) // an escape; readParams proved it complete
				continue
			default:
				i++
				continue
			}
			piece := v[start:i]
			i += sep
			start = i
			n, err := url.QueryUnescape(piece)
			if err != nil {
				return nil, errors.New("in recipients")
			}
			if strings.TrimSpace(n) == "" {
				continue
			}
			out = append(out, refRawRecipient{number: n, plus: literalPlusFirst(piece)})
			if max > 0 && len(out) > max {
				return out, nil
			}
		}
	}
	return out, nil
}

func refParseForm(s string) (map[string][]string, error) {
	return refParseFormKeeping(s, "")
}

func refParseFormKeeping(s, rawKey string) (map[string][]string, error) {
	form := make(map[string][]string)
	for s != "" {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		if rawKey != "" && k == rawKey {
			if !validEscapes(v) {
				return nil, errors.New("invalid URL escape")
			}
			form[k] = append(form[k], v)
			continue
		}
		if v, err = url.QueryUnescape(v); err != nil {
			return nil, err
		}
		form[k] = append(form[k], v)
	}
	return form, nil
}

func refFirst(form map[string][]string, key string) string {
	for _, v := range form[key] {
		if v != "" {
			return v
		}
	}
	return ""
}

func refParseOptions(p map[string][]string) Options {
	o := Options{
		MO:          refFirst(p, "mo") == "1",
		DeliveryAck: refFirst(p, "deliv_ack") == "1",
	}
	if n, ok := optionalInt(refFirst(p, "concat")); ok && n >= 1 && n <= 255 {
		o.Concat = n // 255 is the most parts a concatenation header can count
	}
	if n, ok := optionalInt(refFirst(p, "callback")); ok && n >= 0 && n <= 7 {
		o.Callback = n // a 3-bit mask: intermediate, final, error
	}
	id := refFirst(p, "climsgid")
	if id == "" {
		id = refFirst(p, "cliMsgId")
	}
	if isAlnum(id) && len(id) <= 32 {
		o.ClientMessageID = id
	}
	return o
}

func refCredentials(in Inbound) Credentials {
	params, err := refParseForm(in.RawQuery)
	if err != nil {
		return Credentials{}
	}
	if in.Method == http.MethodPost && len(in.Body) > 0 {
		if body, err := refParseForm(string(in.Body)); err == nil && refHasLegacyKey(body) {
			for k, v := range body {
				params[k] = v
			}
		}
	}
	return Credentials{User: refFirst(params, "user"), Password: refFirst(params, "password"), APIID: refFirst(params, "api_id")}
}

func refHasLegacyKey(form map[string][]string) bool {
	for _, k := range legacyKeys {
		if _, ok := form[k]; ok {
			return true
		}
	}
	return false
}

func refParseQuery(q *Query, in Inbound) (Message, error) {
	params, text, err := refReadParams(in, q.textParam, q.toParam, func(form map[string][]string) bool {
		for _, k := range []string{q.toParam, q.textParam, q.from} {
			if _, ok := form[k]; ok {
				return true
			}
		}
		return false
	})
	if err != nil {
		return Message{}, err
	}
	to, err := refParseRecipients(params[q.toParam], text, q.country, q.maxRecipients)
	if err != nil {
		return Message{}, err
	}
	if err := checkText(text); err != nil {
		return Message{}, httpParseError(http.StatusBadRequest, CodeInvalidUnicode, descUnicode, err)
	}
	m := Message{To: to, Text: text}
	m.From, _ = normalizeSender(refFirst(params, q.from))
	return m, nil
}

// FuzzParseSameAsReference holds the dialects' parsing and credential
// reading to the reference above: for every request, the same message or
// the same error, and the same credentials. Its seeds include the parse
// fuzzers' corpora (testdata/fuzz).
func FuzzParseSameAsReference(f *testing.F) {
	f.Add(iseCreds+"&to=15551234567&text=Your+password+is+abc123", []byte(nil), "GET")
	f.Add("to=+4915112345678,%2B44+7700+900123%2c0033612345678,,&text=a&text=b&from=Guest", []byte("to=&text="), "POST")
	f.Add("to=07700900123&to=07700900123&text=x&unicode=1", []byte("00480069"), "POST")
	f.Add("user=a%zz&to=1", []byte("password=p&api_id=%41"), "POST")
	f.Add("phone=07700+900123&msg=hi&sender=%2B15551234567", []byte("msg=body+wins&phone="), "POST")
	// Credentials: empty and repeated parts, escaped keys, a bad escape
	// after them.
	f.Add("user=&user=ise&pass%77ord=S3cret%21&password=second&api%5Fid=1&api_id=2&&=x&user", []byte(nil), "GET")
	f.Add("user=ise&password=p+w&api_id=1&text=%4", []byte(nil), "GET")
	f.Add("user=ise&password=p&api_id=1&to=1&text=x", []byte(""), "POST")
	for _, dir := range []string{"FuzzParseClickatellHTTP", "FuzzParseQuery"} {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", dir, "*"))
		for _, name := range files {
			if q, body, method, ok := readParseCorpus(name); ok {
				f.Add(q, body, method)
			}
		}
	}
	dialects := []ClickatellHTTP{{}, {DefaultCountry: "DE", MaxRecipients: 10}, {DefaultCountry: "GB", MaxRecipients: 1}}
	query, err := NewQuery(DialectConfig{DefaultCountry: "GB", MaxRecipients: 3}, QueryConfig{ToParam: "phone", TextParam: "msg", FromParam: "sender"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rawQuery string, body []byte, method string) {
		for _, ct := range []string{"", formContentType} {
			in := Inbound{Method: method, RawQuery: rawQuery, Body: body, ContentType: ct}
			for _, d := range dialects {
				m, err := d.Parse(in)
				rm, rerr := refParseClickatellHTTP(d, in)
				sameParse(t, in, m, err, rm, rerr)
			}
			m, err := query.Parse(in)
			rm, rerr := refParseQuery(query, in)
			sameParse(t, in, m, err, rm, rerr)
			if c, rc := (ClickatellHTTP{}).Credentials(in), refCredentials(in); c != rc {
				t.Fatalf("Credentials(%+v) = %+v, reference %+v", in, c, rc)
			}
		}
	})
}

func sameParse(t *testing.T, in Inbound, m Message, err error, rm Message, rerr error) {
	t.Helper()
	if (err == nil) != (rerr == nil) || err != nil && err.Error() != rerr.Error() {
		t.Fatalf("Parse(%+v): error %v, reference %v", in, err, rerr)
	}
	var e, re *Error
	if errors.As(err, &e) != errors.As(rerr, &re) || e != nil && (e.Status != re.Status || e.Outcome != re.Outcome || e.Failover != re.Failover) {
		t.Fatalf("Parse(%+v): error %+v, reference %+v", in, e, re)
	}
	if err == nil && !reflect.DeepEqual(m, rm) {
		t.Fatalf("Parse(%+v) = %+v, reference %+v", in, m, rm)
	}
}

// readParseCorpus reads a corpus file of a (string, []byte, string) fuzz
// target.
func readParseCorpus(name string) (q string, body []byte, method string, ok bool) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", nil, "", false
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 4 {
		return "", nil, "", false
	}
	unquote := func(line, prefix string) (string, bool) {
		s, ok := strings.CutPrefix(line, prefix+"(")
		if !ok || !strings.HasSuffix(s, ")") {
			return "", false
		}
		v, err := strconv.Unquote(strings.TrimSuffix(s, ")"))
		return v, err == nil
	}
	q, ok1 := unquote(lines[1], "string")
	bs, ok2 := unquote(lines[2], "[]byte")
	method, ok3 := unquote(lines[3], "string")
	return q, []byte(bs), method, ok1 && ok2 && ok3
}
