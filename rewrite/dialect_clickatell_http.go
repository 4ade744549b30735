package rewrite

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
	// MaxRecipients refuses a request naming more recipients, counted as
	// written (duplicates included) before any is normalised; 0 = no limit.
	MaxRecipients int
}

var _ Dialect = ClickatellHTTP{}

// ClickatellHTTPConfig holds the "clickatell-http" dialect's own route keys:
// none beyond default_country and max_recipients (DialectConfig).
type ClickatellHTTPConfig struct{}

// NewClickatellHTTP returns the dialect for cfg; it cannot fail.
func NewClickatellHTTP(cfg DialectConfig) (ClickatellHTTP, error) {
	//lint:ignore S1016 the two structs only happen to match; DialectConfig may grow
	return ClickatellHTTP{DefaultCountry: cfg.DefaultCountry, MaxRecipients: cfg.MaxRecipients}, nil
}

const formContentType = "application/x-www-form-urlencoded"

// Every Parse error is one of these fixed values (copied per call), so no
// message text or number can ever reach an error, a log or ISE.
const (
	descMalformed   = "Invalid or missing parameters: malformed URL encoding"
	descMissingTo   = "Invalid or missing parameters: to"
	descTooMany     = "Too many recipients"
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
	var qbuf, bbuf [maxFormPairs]formPair
	params, text, err := readParams(in, "text", "to", legacyKeys, qbuf[:0], bbuf[:0])
	if err != nil {
		return Message{}, err
	}
	to, err := parseRecipients(params.of("to"), "to", text, d.DefaultCountry, d.MaxRecipients)
	if err != nil {
		return Message{}, err
	}
	m := Message{To: to}
	if params.first("unicode") == "1" {
		var uerr error
		if text, uerr = decodeUCS2Hex(text); uerr != nil {
			return Message{}, httpParseError(http.StatusBadRequest, CodeInvalidUnicode, descUnicode, uerr)
		}
	}
	if err := checkText(text); err != nil {
		return Message{}, httpParseError(http.StatusBadRequest, CodeInvalidUnicode, descUnicode, err)
	}
	m.Text = text
	m.From, _ = normalizeSender(params.first("from"))
	m.Options = parseOptions(params)
	return m, nil
}

// readParams reads the parameters of a GET or form POST and the text under
// textKey, collecting the pairs in qbuf and bbuf (which the caller keeps on
// its stack). formKeys tell a form body from ISE's bare "$message$" POST
// data: a body holding one of these parameters is a form. The values
// of toKey are read undecoded, by parseRecipients: decoding loses whether a
// space was a literal "+".
func readParams(in Inbound, textKey, toKey string, formKeys []string, qbuf, bbuf form) (params, string, *Error) {
	var body form
	haveBody := false
	switch in.Method {
	case http.MethodGet:
	case http.MethodPost:
		if ct := strings.ToLower(strings.TrimSpace(in.ContentType)); ct != "" && ct != formContentType {
			return params{}, "", httpParseError(http.StatusUnsupportedMediaType, CodeMissingParams, descContentType, nil)
		}
		if len(in.Body) > 0 {
			var err error
			if body, err = appendForm(bbuf, string(in.Body)); err != nil {
				return params{}, "", httpParseError(http.StatusBadRequest, CodeMissingParams, descMalformed, errors.New("in request body"))
			}
			haveBody = true
		}
	default:
		return params{}, "", httpParseError(http.StatusMethodNotAllowed, CodeMissingParams, descMethod, nil)
	}
	query, err := appendForm(qbuf, in.RawQuery)
	if err != nil {
		return params{}, "", httpParseError(http.StatusBadRequest, CodeMissingParams, descMalformed, errors.New("in query"))
	}
	p := params{query: query}
	if haveBody && query.first(textKey) == "" && !body.hasAny(formKeys) {
		// The bare "$message$" POST. appendForm already proved the body
		// decodes, so this cannot fail.
		return p, unescapeValid(string(in.Body)), nil
	}
	p.body = body
	return p, p.first(textKey), nil
}

// parseRecipients splits the comma-separated values of key in f, still
// URL-encoded as received, normalises each (in defaultCountry when it has
// no country code) and drops duplicates. It checks in the legacy API's
// order: no recipient, then no text, then too many (more than max, when
// max > 0, counted as written before any number is parsed, so a flood of
// numbers costs no libphonenumber work), then a bad number.
func parseRecipients(f form, key, text, defaultCountry string, max int) ([]string, *Error) {
	var buf [4]rawRecipient
	raw, err := splitRecipients(buf[:0], f, key, max)
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
	to := make([]string, 0, len(raw))
	// Duplicates are few and lists short: a map only for long lists.
	var seen map[string]bool
	if len(raw) > 16 {
		seen = make(map[string]bool, len(raw))
	}
	for i, n := range raw {
		var scratch [64]byte
		d, err := recipientDigitsBytes(appendUnescaped(scratch[:0], n.raw), n.raw, defaultCountry, n.plus)
		if err != nil {
			return nil, httpParseError(http.StatusBadRequest, CodeInvalidDestination, descDestination, fmt.Errorf("recipient %d: %w", i+1, err))
		}
		switch {
		case seen != nil:
			if seen[d] {
				continue
			}
			seen[d] = true
		case slices.Contains(to, d):
			continue
		}
		to = append(to, d)
	}
	return to, nil
}

// rawRecipient is one entry of a recipient parameter: as received (with
// escapes proven valid), and whether it had a literal "+" before its first
// digit.
type rawRecipient struct {
	raw  string
	plus bool
}

// splitRecipients splits the URL-encoded values of key in f at "," (also
// when sent as %2C), skipping entries that decode to blanks, and appends
// them to dst. With max > 0 it stops after max+1 entries: enough to know
// there are too many.
//
// In form encoding "+" is a space, but template engines often put a number
// like "+4915112345678" into the URL unencoded; decoded, it would become
// " 4915112345678" and, with a default_country, a national number of that
// country: somebody else's phone. So a literal "+" before an entry's first
// digit marks it international, exactly as "%2B" would. After the first
// digit a "+" stays a space ("07700+900123").
func splitRecipients(dst []rawRecipient, f form, key string, max int) ([]rawRecipient, error) {
	for _, pair := range f {
		if pair.key != key {
			continue
		}
		v := pair.raw
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
				i = min(i+3, len(v)) // an escape; appendForm proved it complete
				continue
			default:
				i++
				continue
			}
			piece := v[start:i]
			i += sep
			start = i
			if !validEscapes(piece) {
				return nil, errors.New("in recipients")
			}
			var scratch [64]byte
			if len(bytes.TrimSpace(appendUnescaped(scratch[:0], piece))) == 0 {
				continue
			}
			dst = append(dst, rawRecipient{raw: piece, plus: literalPlusFirst(piece)})
			if max > 0 && len(dst) > max {
				return dst, nil
			}
		}
	}
	return dst, nil
}

// appendUnescaped appends url.QueryUnescape(s) to dst, for an s that
// validEscapes accepted.
func appendUnescaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		case '+':
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// literalPlusFirst reports whether the URL-encoded entry has a literal "+"
// before its first digit (a digit may itself be escaped, "%34").
func literalPlusFirst(raw string) bool {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' && i+2 < len(raw) {
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
			if c >= '0' && c <= '9' {
				return false
			}
			continue
		}
		switch {
		case c == '+':
			return true
		case c >= '0' && c <= '9':
			return false
		}
	}
	return false
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// legacyKeys are the sendmsg parameter names. A POST body holding any of them
// is a form, never a bare message: reading "password=..." as the text would
// text ISE's provider password to the guest.
var legacyKeys = []string{
	"text", "to", "user", "password", "api_id", "session_id", "from", "mo",
	"unicode", "concat", "climsgid", "cliMsgId", "callback", "deliv_ack",
}

// validEscapes reports whether url.QueryUnescape would accept s: every "%"
// starts a two-digit hex escape.
func validEscapes(s string) bool {
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			return true
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		s = s[i+3:]
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// checkText refuses text no handset should receive and no provider handles
// alike: invalid UTF-8, NUL and the other control characters except tab,
// line feed and carriage return (C0, DEL, C1), and Unicode noncharacters
// (U+FFFE, U+FFFF and the rest, U+FDD0-U+FDEF and the last two code
// points of every plane). The errors name the rule, never the text.
func checkText(s string) error {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				return errTextControl
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return errTextUTF8
		case r >= 0x80 && r <= 0x9f:
			return errTextControl
		case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
			return errTextNonchar
		}
		i += size
	}
	return nil
}

var (
	errTextUTF8    = errors.New("text is not valid UTF-8")
	errTextControl = errors.New("text contains a control character")
	errTextNonchar = errors.New("text contains a Unicode noncharacter")
)

// optionalInt reads an optional numeric parameter. Absent is the usual case
// and costs nothing (strconv.Atoi would allocate an error for "").
func optionalInt(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
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
func parseOptions(p params) Options {
	o := Options{
		MO:          p.first("mo") == "1",
		DeliveryAck: p.first("deliv_ack") == "1",
	}
	if n, ok := optionalInt(p.first("concat")); ok && n >= 1 && n <= 255 {
		o.Concat = n // 255 is the most parts a concatenation header can count
	}
	if n, ok := optionalInt(p.first("callback")); ok && n >= 0 && n <= 7 {
		o.Callback = n // a 3-bit mask: intermediate, final, error
	}
	id := p.first("climsgid")
	if id == "" {
		id = p.first("cliMsgId")
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
	if !strings.ContainsAny(s, "\r\n") && utf8.ValidString(s) {
		return s // what strings.Map would return, without its call per rune
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

var _ CredentialReader = ClickatellHTTP{}

// queryCredentials is Credentials of a query alone, read in one pass
// without collecting its pairs: nothing when any escape in it is invalid
// (appendForm would fail: a "%" must be followed by two hex digits, which
// can never be the "&" or "=" it is split at), else each part's first
// non-empty value.
func queryCredentials(q string) Credentials {
	if !validEscapes(q) {
		return Credentials{}
	}
	var c Credentials
	var found uint8
	for q != "" && found != 7 {
		var pair string
		pair, q = cutByte(q, '&')
		k, v := cutByte(pair, '=')
		if v == "" {
			continue
		}
		var part *string
		var bit uint8
		switch unescapeValid(k) {
		case "user":
			part, bit = &c.User, 1
		case "password":
			part, bit = &c.Password, 2
		case "api_id":
			part, bit = &c.APIID, 4
		default:
			continue
		}
		if found&bit == 0 {
			if *part = unescapeValid(v); *part != "" {
				found |= bit
			}
		}
	}
	return c
}

// Credentials reads user, password and api_id from the query and, for a
// form POST, the body (the body wins, as in Parse).
func (ClickatellHTTP) Credentials(in Inbound) Credentials {
	if in.Method != http.MethodPost || len(in.Body) == 0 {
		return queryCredentials(in.RawQuery)
	}
	var qbuf, bbuf [maxFormPairs]formPair
	query, err := appendForm(qbuf[:0], in.RawQuery)
	if err != nil {
		return Credentials{}
	}
	p := params{query: query}
	if in.Method == http.MethodPost && len(in.Body) > 0 {
		if body, err := appendForm(bbuf[:0], string(in.Body)); err == nil && body.hasAny(legacyKeys) {
			p.body = body
		}
	}
	return Credentials{User: p.first("user"), Password: p.first("password"), APIID: p.first("api_id")}
}
