package rewrite

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"text/template"
	"unicode/utf8"
)

// QueryConfig holds the "query" dialect's own route keys.
type QueryConfig struct {
	// The parameter names; "" means "to", "text", "from".
	ToParam   string `toml:"to_param"`
	TextParam string `toml:"text_param"`
	FromParam string `toml:"from_param"`
	// The reply lines, text/templates over ReplyFields; "" means
	// "ID: {{.ID}}" and "ERR: {{.Code}}, {{.Description}}".
	ReplySuccess string `toml:"reply_success"`
	ReplyFailure string `toml:"reply_failure"`
}

// ReplyFields are the values a query dialect reply template may use.
type ReplyFields struct {
	ID          string // provider message id (success)
	Code        string // legacy error code, e.g. "105" (failure)
	Description string // legacy error description (failure)
	To          string // the recipient, international digits
}

// Query is the "query" dialect: a generic GET or form-POST SMS URL whose
// parameter names and reply lines come from the route, for ISE templates
// other than Clickatell's (Twilio-style, carrier gateways). Any parameter
// other than the three configured ones (a legacy user or password, say) is
// read and dropped. Build it with NewQuery.
type Query struct {
	country                  string
	maxRecipients            int
	toParam, textParam, from string
	success, failure         *template.Template
	successSrc, failureSrc   string
	formKeys                 []string // the three parameters: a POST body naming one is a form
}

var _ Dialect = (*Query)(nil)

// Default query dialect settings.
const (
	DefaultReplySuccess = "ID: {{.ID}}"
	DefaultReplyFailure = "ERR: {{.Code}}, {{.Description}}"
)

// NewQuery validates qc and compiles its reply templates.
func NewQuery(cfg DialectConfig, qc QueryConfig) (*Query, error) {
	q := &Query{country: cfg.DefaultCountry, maxRecipients: cfg.MaxRecipients, toParam: qc.ToParam, textParam: qc.TextParam, from: qc.FromParam,
		successSrc: qc.ReplySuccess, failureSrc: qc.ReplyFailure}
	if q.toParam == "" {
		q.toParam = "to"
	}
	if q.textParam == "" {
		q.textParam = "text"
	}
	if q.from == "" {
		q.from = "from"
	}
	if q.successSrc == "" {
		q.successSrc = DefaultReplySuccess
	}
	if q.failureSrc == "" {
		q.failureSrc = DefaultReplyFailure
	}
	q.formKeys = []string{q.toParam, q.textParam, q.from}
	var errs []error
	for _, kv := range [][2]string{{"to_param", q.toParam}, {"text_param", q.textParam}, {"from_param", q.from}} {
		key, v := kv[0], kv[1]
		if strings.ContainsAny(v, "&=#? \t\r\n") || !utf8.ValidString(v) {
			errs = append(errs, &KeyError{Key: key, Err: fmt.Errorf("query: %s %q must be a plain parameter name", key, v)})
		}
	}
	if q.toParam == q.textParam || q.toParam == q.from || q.textParam == q.from {
		errs = append(errs, &KeyError{Key: "to_param", Err: errors.New("query: to_param, text_param and from_param must differ")})
	}
	var err error
	if q.success, err = compileReply("reply_success", q.successSrc); err != nil {
		errs = append(errs, err)
	}
	if q.failure, err = compileReply("reply_failure", q.failureSrc); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return q, nil
}

func compileReply(key, src string) (*template.Template, error) {
	wrap := func(err error) error {
		return &KeyError{Key: key, Err: fmt.Errorf("query: %s %q: %w (fields: .ID, .Code, .Description, .To)", key, src, err)}
	}
	tm, err := template.New(key).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, wrap(err)
	}
	if err := tm.Execute(discard{}, ReplyFields{ID: "i", Code: "c", Description: "d", To: "1"}); err != nil {
		return nil, wrap(err)
	}
	return tm, nil
}

// Parse reads a GET, or a form POST (query and body merged, the body
// winning), including ISE's POST whose data is only the message.
func (q *Query) Parse(in Inbound) (Message, error) {
	var qbuf, bbuf [maxFormPairs]formPair
	params, text, err := readParams(in, q.textParam, q.toParam, q.formKeys, qbuf[:0], bbuf[:0])
	if err != nil {
		return Message{}, err
	}
	to, err := parseRecipients(params.of(q.toParam), q.toParam, text, q.country, q.maxRecipients)
	if err != nil {
		return Message{}, err
	}
	if err := checkText(text); err != nil {
		return Message{}, httpParseError(http.StatusBadRequest, CodeInvalidUnicode, descUnicode, err)
	}
	m := Message{To: to, Text: text}
	m.From, _ = normalizeSender(params.first(q.from))
	return m, nil
}

// Reply renders one line per recipient with reply_success or reply_failure.
// The status follows the same rules as the clickatell-http dialect.
func (q *Query) Reply(r Result) Reply {
	if len(r.Recipients) == 0 {
		return q.ReplyError(&Error{Status: http.StatusInternalServerError, Code: CodeInternal, Description: "Internal error", Outcome: Refused})
	}
	var b strings.Builder
	for _, rc := range r.Recipients {
		f := ReplyFields{ID: oneLine(rc.ID), To: oneLine(rc.To)}
		tm := q.success
		if rc.Err != nil {
			f.Code, f.Description, tm = oneLine(rc.Err.Code), oneLine(rc.Err.Description), q.failure
		}
		b.WriteString(q.line(tm, f))
	}
	return Reply{Status: resultStatus(r), ContentType: replyContentType, Body: b.String()}
}

// ReplyError renders reply_failure with the error's status.
func (q *Query) ReplyError(e *Error) Reply {
	if e == nil {
		e = &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Description: "Internal error"}
	}
	return Reply{Status: errorStatus(e), ContentType: replyContentType,
		Body: q.line(q.failure, ReplyFields{Code: oneLine(e.Code), Description: oneLine(e.Description)})}
}

// line renders one reply line. The templates were proven at load time, so
// execution only fails on a bug; the fixed default then keeps ISE informed.
func (q *Query) line(tm *template.Template, f ReplyFields) string {
	var b strings.Builder
	if err := tm.Execute(&b, f); err != nil {
		return "ERR: " + CodeInternal + ", Internal error\n"
	}
	return strings.TrimRight(b.String(), "\r\n") + "\n"
}

// Describe summarises the settings for `postern check`.
func (q *Query) Describe() string {
	return fmt.Sprintf("parameters to=%q text=%q from=%q, replies %q / %q", q.toParam, q.textParam, q.from, q.successSrc, q.failureSrc)
}
