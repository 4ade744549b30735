package rewrite

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ClickatellHTTP is the "clickatell-http" dialect: Clickatell's legacy
// HTTP API sendmsg call, which is what ISE 1.x sends
// (GET /http/sendmsg?user=&password=&api_id=&to=&text=), and its
// "ID: ..." / "ERR: ..." replies.
//
// user, password and api_id are accepted and dropped: they are ISE's copy of
// credentials postern replaces with its own, and must never travel further.
type ClickatellHTTP struct {
	// DefaultCountry (ISO code) reads recipients without a country code as
	// national numbers of that country; "" requires international numbers.
	DefaultCountry string
}

var _ Dialect = ClickatellHTTP{}

const formContentType = "application/x-www-form-urlencoded"

// Every Parse error is one of these fixed values (copied per call), so no
// message text or number can ever reach an error, a log or ISE.
const (
	descMalformed   = "Invalid or missing parameters: malformed URL encoding"
	descMissingTo   = "Invalid or missing parameters: to"
	descMethod      = "Invalid or missing parameters: method must be GET or POST"
	descContentType = "Invalid or missing parameters: POST body must be " + formContentType
	descEmpty       = "Empty message"
	descDestination = "Invalid destination address"
	descUnicode     = "Invalid Unicode data"
)

func httpParseError(status int, code, desc string, cause error) *Error {
	return &Error{Status: status, Code: code, Description: desc, Outcome: Refused, Cause: cause}
}

// Parse reads a sendmsg call. GET takes parameters from the query; POST
// (form-encoded) merges query and body, the body winning. When ISE's URL ends
// in "&text=" and the POST data is only the URL-encoded message, the whole
// body is the text.
func (d ClickatellHTTP) Parse(in Inbound) (Message, error) {
	params, text, err := readParams(in, "text", hasLegacyKey)
	if err != nil {
		return Message{}, err
	}
	to, err := parseRecipients(params["to"], text, d.DefaultCountry)
	if err != nil {
		return Message{}, err
	}
	m := Message{To: to}
	if first(params, "unicode") == "1" {
		var uerr error
		if text, uerr = decodeUCS2Hex(text); uerr != nil {
			return Message{}, httpParseError(http.StatusBadRequest, CodeInvalidUnicode, descUnicode, uerr)
		}
	}
	if !utf8.ValidString(text) {
		return Message{}, httpParseError(http.StatusBadRequest, CodeInvalidUnicode, descUnicode, errors.New("text is not valid UTF-8"))
	}
	m.Text = text
	m.From, _ = normalizeSender(first(params, "from"))
	m.Options = parseOptions(params)
	return m, nil
}

// readParams reads the parameters of a GET or form POST and the text under
// textKey. isForm tells a form body from ISE's bare "$message$" POST data:
// a body holding a parameter the dialect knows is a form.
func readParams(in Inbound, textKey string, isForm func(map[string][]string) bool) (map[string][]string, string, *Error) {
	var body map[string][]string
	switch in.Method {
	case http.MethodGet:
	case http.MethodPost:
		if ct := strings.ToLower(strings.TrimSpace(in.ContentType)); ct != "" && ct != formContentType {
			return nil, "", httpParseError(http.StatusUnsupportedMediaType, CodeMissingParams, descContentType, nil)
		}
		if len(in.Body) > 0 {
			var err error
			if body, err = parseForm(string(in.Body)); err != nil {
				return nil, "", httpParseError(http.StatusBadRequest, CodeMissingParams, descMalformed, errors.New("in request body"))
			}
		}
	default:
		return nil, "", httpParseError(http.StatusMethodNotAllowed, CodeMissingParams, descMethod, nil)
	}
	params, err := parseForm(in.RawQuery)
	if err != nil {
		return nil, "", httpParseError(http.StatusBadRequest, CodeMissingParams, descMalformed, errors.New("in query"))
	}
	var text string
	if body != nil && first(params, textKey) == "" && !isForm(body) {
		// The bare "$message$" POST. parseForm already proved the body
		// decodes, so this cannot fail.
		text, _ = url.QueryUnescape(string(in.Body))
	} else {
		for k, v := range body {
			params[k] = v
		}
		text = first(params, textKey)
	}
	return params, text, nil
}

// parseRecipients splits comma-separated recipient values, normalises each
// (in defaultCountry when it has no country code) and drops duplicates. It
// checks in the legacy API's order: no recipient, then no text, then a bad
// number.
func parseRecipients(values []string, text, defaultCountry string) ([]string, *Error) {
	var raw []string
	for _, v := range values {
		for n := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(n) != "" {
				raw = append(raw, n)
			}
		}
	}
	if len(raw) == 0 {
		return nil, httpParseError(http.StatusBadRequest, CodeMissingParams, descMissingTo, nil)
	}
	if text == "" {
		return nil, httpParseError(http.StatusBadRequest, CodeEmptyMessage, descEmpty, nil)
	}
	var to []string
	seen := make(map[string]bool, len(raw))
	for i, n := range raw {
		d, err := numberDigits(n, defaultCountry)
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

// legacyKeys are the sendmsg parameter names. A POST body holding any of them
// is a form, never a bare message: reading "password=..." as the text would
// text ISE's provider password to the guest.
var legacyKeys = []string{
	"text", "to", "user", "password", "api_id", "session_id", "from", "mo",
	"unicode", "concat", "climsgid", "cliMsgId", "callback", "deliv_ack",
}

func hasLegacyKey(form map[string][]string) bool {
	for _, k := range legacyKeys {
		if _, ok := form[k]; ok {
			return true
		}
	}
	return false
}

// parseForm decodes k=v&k=v pairs ("+" and "%20" are spaces). Unlike
// url.ParseQuery it treats ";" as data, since ISE leaves it unescaped in
// text, and it fails on the first bad escape instead of dropping the pair.
func parseForm(s string) (map[string][]string, error) {
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
		if v, err = url.QueryUnescape(v); err != nil {
			return nil, err
		}
		form[k] = append(form[k], v)
	}
	return form, nil
}

// optionalInt reads an optional numeric parameter. Absent is the usual case
// and costs nothing (strconv.Atoi would allocate an error for "").
func optionalInt(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// first returns the first non-empty value of key, so an ISE template with a
// stray empty duplicate ("text=&text=...") still works.
func first(form map[string][]string, key string) string {
	for _, v := range form[key] {
		if v != "" {
			return v
		}
	}
	return ""
}

// decodeUCS2Hex decodes unicode=1 text: UTF-16BE code units as hex, four
// digits each ("00480069" = "Hi"), with surrogate pairs for characters
// outside the BMP. Lone surrogates are errors, not U+FFFD: silently mangling
// a password would be worse than refusing it.
func decodeUCS2Hex(s string) (string, error) {
	if len(s)%4 != 0 {
		return "", errors.New("unicode text length is not a multiple of 4 hex digits")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", errors.New("unicode text is not hex")
	}
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	var sb strings.Builder
	for i := 0; i < len(units); i++ {
		u := rune(units[i])
		switch {
		case utf16.IsSurrogate(u) && u < 0xDC00 && i+1 < len(units):
			r := utf16.DecodeRune(u, rune(units[i+1]))
			if r == utf8.RuneError {
				return "", errors.New("unicode text has an unpaired surrogate")
			}
			sb.WriteRune(r)
			i++
		case utf16.IsSurrogate(u):
			return "", errors.New("unicode text has an unpaired surrogate")
		default:
			sb.WriteRune(u)
		}
	}
	return sb.String(), nil
}

// parseOptions reads the optional parameters. A malformed value is ignored,
// never an error: it must not stop a guest's password from going out.
func parseOptions(p map[string][]string) Options {
	o := Options{
		MO:          first(p, "mo") == "1",
		DeliveryAck: first(p, "deliv_ack") == "1",
	}
	if n, ok := optionalInt(first(p, "concat")); ok && n >= 1 && n <= 255 {
		o.Concat = n // 255 is the most parts a concatenation header can count
	}
	if n, ok := optionalInt(first(p, "callback")); ok && n >= 0 && n <= 7 {
		o.Callback = n // a 3-bit mask: intermediate, final, error
	}
	id := first(p, "climsgid")
	if id == "" {
		id = first(p, "cliMsgId")
	}
	if isAlnum(id) && len(id) <= 32 {
		o.ClientMessageID = id
	}
	return o
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

const replyContentType = "text/plain; charset=utf-8"

// Reply writes the legacy sendmsg answer. One recipient gets "ID: <id>" or
// "ERR: <code>, <description>"; several get one line each with " To: <n>".
// The status is 200 if anything was delivered. Otherwise it is the first
// error's, unless an outcome is Unknown: then ISE must see that status, since
// "maybe sent" must not read as a plain refusal that invites a resend.
func (d ClickatellHTTP) Reply(r Result) Reply {
	switch len(r.Recipients) {
	case 0:
		return d.ReplyError(&Error{Status: http.StatusInternalServerError, Code: CodeInternal, Description: "Internal error", Outcome: Refused})
	case 1:
		if e := r.Recipients[0].Err; e != nil {
			return d.ReplyError(e)
		}
		return Reply{Status: http.StatusOK, ContentType: replyContentType, Body: "ID: " + oneLine(r.Recipients[0].ID) + "\n"}
	}
	var b strings.Builder
	for _, rc := range r.Recipients {
		if rc.Err == nil {
			fmt.Fprintf(&b, "ID: %s To: %s\n", oneLine(rc.ID), oneLine(rc.To))
			continue
		}
		fmt.Fprintf(&b, "ERR: %s, %s To: %s\n", oneLine(rc.Err.Code), oneLine(rc.Err.Description), oneLine(rc.To))
	}
	return Reply{Status: resultStatus(r), ContentType: replyContentType, Body: b.String()}
}

// resultStatus is 200 if anything was delivered. Otherwise it is the first
// error's, unless an outcome is Unknown: then ISE must see that status, since
// "maybe sent" must not read as a plain refusal that invites a resend.
func resultStatus(r Result) int {
	var firstErr, unknown *Error
	for _, rc := range r.Recipients {
		if rc.Err == nil {
			return http.StatusOK
		}
		if firstErr == nil {
			firstErr = rc.Err
		}
		if unknown == nil && rc.Err.Outcome == Unknown {
			unknown = rc.Err
		}
	}
	if unknown != nil {
		return errorStatus(unknown)
	}
	if firstErr == nil {
		return http.StatusInternalServerError
	}
	return errorStatus(firstErr)
}

// ReplyError writes "ERR: <code>, <description>" with the error's status.
func (ClickatellHTTP) ReplyError(e *Error) Reply {
	if e == nil {
		e = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Description: "Internal error"}
	}
	return Reply{
		Status:      errorStatus(e),
		ContentType: replyContentType,
		Body:        "ERR: " + oneLine(e.Code) + ", " + oneLine(e.Description) + "\n",
	}
}

// errorStatus guards against an Error built without a failure status: a 2xx
// would tell ISE the SMS went out, and net/http panics on codes below 100.
func errorStatus(e *Error) int {
	if e.Status < 400 || e.Status > 599 {
		return http.StatusInternalServerError
	}
	return e.Status
}

// oneLine keeps each reply line one line, whatever an id or description holds.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}
