package rewrite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/template"
)

// TemplateConfig describes a REST gateway for the "template" provider. Every
// string in Headers and Body is a text/template over TemplateFields.
type TemplateConfig struct {
	Method      string            `toml:"method"`       // "POST" (default) or "PUT"
	ContentType string            `toml:"content_type"` // "json" (default) or "form"
	Headers     map[string]string `toml:"headers"`      // header name -> value template
	// Auth is how the token goes out: "bearer" (Authorization: Bearer),
	// "basic" (Username and token), "header" (AuthHeader: token) or "none".
	Auth       string `toml:"auth"`
	AuthHeader string `toml:"auth_header"`
	Username   string `toml:"username"`
	// Body maps each field to a template string, a list of template strings
	// (a JSON array, or a repeated form field), or a literal number or
	// boolean. A field whose template renders empty is left out.
	Body map[string]any `toml:"body"`
	// IDPointer is a JSON pointer (RFC 6901) to the message id in a 2xx
	// reply; "" means the reply carries none and ISE gets "ID: accepted".
	IDPointer string `toml:"id_pointer"`
	// ErrorPointer is a JSON pointer to an error message; when it names a
	// non-empty value the provider refused, even with a 2xx (Vonage answers
	// 200 with messages[0].error-text).
	ErrorPointer string `toml:"error_pointer"`
}

// TemplateFields are the values a template may use, for one recipient.
type TemplateFields struct {
	Text            string // message text, UTF-8
	To              string // recipient, E.164 with "+"
	ToDigits        string // recipient, international digits only
	From            string // sender: the route's from, else the request's
	ClientMessageID string // the legacy climsgid, "" if none
	Token           string // the route's token (secret); prefer auth
}

const templateName providerName = "template"

// acceptedID is the id ISE gets from a gateway that returns none.
const acceptedID = "accepted"

// Template is the "template" provider. Build it with NewTemplate.
type Template struct {
	method, contentType string
	endpoint            *url.URL
	auth, authHeader    string
	username, token     string
	from                string
	headers             map[string]*template.Template
	body                map[string]bodyValue
	idPointer, errPtr   string
}

// bodyValue is one body field: templates (one, or a list) or a literal.
type bodyValue struct {
	list    bool
	tmpls   []*template.Template
	literal any
}

var _ Provider = (*Template)(nil)

// sampleFields checks templates at load time: executing against them with
// missingkey=error turns a reference to an unknown field into a config error.
var sampleFields = TemplateFields{Text: "t", To: "+15551234567", ToDigits: "15551234567", From: "f", ClientMessageID: "c", Token: "k"}

// NewTemplate validates cfg and compiles every template, reporting each
// problem with the key it belongs to.
func NewTemplate(cfg Config, tc TemplateConfig) (*Template, error) {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Err: fmt.Errorf("template: "+format, args...)})
	}
	t := &Template{method: strings.ToUpper(tc.Method), contentType: tc.ContentType, auth: tc.Auth,
		authHeader: tc.AuthHeader, username: tc.Username, token: cfg.Token, idPointer: tc.IDPointer, errPtr: tc.ErrorPointer,
		headers: map[string]*template.Template{}, body: map[string]bodyValue{}}
	switch t.method {
	case "":
		t.method = http.MethodPost
	case http.MethodPost, http.MethodPut:
	default:
		add("method", "method must be POST or PUT")
	}
	switch t.contentType {
	case "":
		t.contentType = "json"
	case "json", "form":
	default:
		add("content_type", "content_type must be \"json\" or \"form\"")
	}
	if cfg.Endpoint == nil {
		add("endpoint", "endpoint is required (the gateway's https:// send URL)")
	} else {
		if msg := checkEndpoint(cfg.Endpoint); msg != "" {
			add("endpoint", "%s", msg)
		}
		u := *cfg.Endpoint
		t.endpoint = &u
	}
	switch t.auth {
	case "bearer", "basic", "header":
		if msg := checkToken(cfg.Token); msg != "" {
			add("token", "%s (auth = %q)", msg, t.auth)
		}
	case "none":
	case "":
		add("auth", "auth is required: \"bearer\", \"basic\", \"header\" or \"none\"")
	default:
		add("auth", "auth must be \"bearer\", \"basic\", \"header\" or \"none\"")
	}
	if t.auth == "basic" && (t.username == "" || strings.ContainsAny(t.username, ":\r\n")) {
		add("username", "auth = \"basic\" needs a username without \":\" or line breaks")
	} else if t.auth != "basic" && t.username != "" {
		add("username", "username is only used with auth = \"basic\"")
	}
	if t.auth == "header" {
		if !validHeaderName(t.authHeader) || reservedHeader(t.authHeader) {
			add("auth_header", "auth = \"header\" needs auth_header, a header name such as \"X-API-Key\"")
		}
	} else if t.authHeader != "" {
		add("auth_header", "auth_header is only used with auth = \"header\"")
	}
	if cfg.From != "" {
		from, ok := normalizeSender(cfg.From)
		if !ok {
			add("from", "from must be a phone number or an alphanumeric sender id of at most 11 characters")
		}
		t.from = from
	}
	for _, name := range slices.Sorted(maps.Keys(tc.Headers)) {
		key := "headers." + name
		switch {
		case !validHeaderName(name):
			add(key, "header %q is not a valid header name", name)
			continue
		case reservedHeader(name), t.auth != "none" && strings.EqualFold(name, "Authorization"):
			add(key, "header %q is set by postern itself (use auth and content_type)", name)
			continue
		}
		tm, err := compileTemplate(key, tc.Headers[name])
		if err != nil {
			add(key, "%v", err)
			continue
		}
		t.headers[textproto.CanonicalMIMEHeaderKey(name)] = tm
	}
	if len(tc.Body) == 0 {
		add("body", "body is required: the fields to send, e.g. text = \"{{.Text}}\"")
	}
	for _, name := range slices.Sorted(maps.Keys(tc.Body)) {
		key := "body." + name
		if name == "" {
			add("body", "body has an empty field name")
			continue
		}
		v, err := compileBodyValue(key, tc.Body[name])
		if err != nil {
			add(key, "%v", err)
			continue
		}
		t.body[name] = v
	}
	for _, kv := range [][2]string{{"id_pointer", t.idPointer}, {"error_pointer", t.errPtr}} {
		key, p := kv[0], kv[1]
		if p != "" && !strings.HasPrefix(p, "/") {
			add(key, "%s must be a JSON pointer starting with \"/\", e.g. \"/messages/0/id\"", key)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

// compileTemplate parses s and proves it only uses known fields.
func compileTemplate(name, s string) (*template.Template, error) {
	tm, err := template.New(name).Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", s, err)
	}
	if err := tm.Execute(discard{}, sampleFields); err != nil {
		return nil, fmt.Errorf("template %q: %w (fields: .Text, .To, .ToDigits, .From, .ClientMessageID, .Token)", s, err)
	}
	return tm, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func compileBodyValue(key string, v any) (bodyValue, error) {
	switch v := v.(type) {
	case string:
		tm, err := compileTemplate(key, v)
		return bodyValue{tmpls: []*template.Template{tm}}, err
	case []any:
		bv := bodyValue{list: true}
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return bodyValue{}, errors.New("a list in body may only hold template strings")
			}
			tm, err := compileTemplate(key, s)
			if err != nil {
				return bodyValue{}, err
			}
			bv.tmpls = append(bv.tmpls, tm)
		}
		return bv, nil
	case []string:
		return compileBodyValue(key, anySlice(v))
	case int64, float64, bool:
		return bodyValue{literal: v}, nil
	}
	return bodyValue{}, fmt.Errorf("body values must be template strings, lists of them, numbers or booleans, not %T", v)
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// reservedHeader names headers net/http or postern own; a template must not
// smuggle a second Host or a wrong length.
func reservedHeader(s string) bool {
	switch textproto.CanonicalMIMEHeaderKey(s) {
	case "Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Te", "Upgrade", "Proxy-Authorization":
		return true
	}
	return false
}

func (t *Template) fields(m Message) TemplateFields {
	from := t.from
	if from == "" {
		from = m.From
	}
	return TemplateFields{Text: m.Text, To: "+" + m.To[0], ToDigits: m.To[0], From: from,
		ClientMessageID: m.Options.ClientMessageID, Token: t.token}
}

func render(tm *template.Template, f TemplateFields) (string, error) {
	var b strings.Builder
	if err := tm.Execute(&b, f); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Build renders the body through the content type's own encoder
// (encoding/json or net/url): a template's output is always one value,
// never pasted into the syntax around it.
func (t *Template) Build(ctx context.Context, m Message) (*http.Request, error) {
	if err := checkMessage(m, t.MaxRecipients()); err != nil {
		return nil, buildErrorFor(templateName, err)
	}
	f := t.fields(m)
	jsonBody := map[string]any{}
	form := url.Values{}
	for name, v := range t.body {
		if v.literal != nil {
			jsonBody[name] = v.literal
			form.Set(name, fmt.Sprint(v.literal))
			continue
		}
		var vals []string
		for _, tm := range v.tmpls {
			s, err := render(tm, f)
			if err != nil {
				return nil, buildErrorFor(templateName, fmt.Errorf("body field %q: %w", name, err))
			}
			if s != "" {
				vals = append(vals, s)
			}
		}
		switch {
		case v.list:
			jsonBody[name] = append([]string{}, vals...)
			form[name] = vals
		case len(vals) == 1:
			jsonBody[name] = vals[0]
			form.Set(name, vals[0])
		}
	}
	var req *http.Request
	var err error
	if t.contentType == "form" {
		req, err = newFormRequest(ctx, t.method, t.endpoint, form)
	} else {
		req, err = newJSONRequest(ctx, t.endpoint, jsonBody)
		if err == nil {
			req.Method = t.method
		}
	}
	if err != nil {
		return nil, buildErrorFor(templateName, err)
	}
	for name, tm := range t.headers {
		v, err := render(tm, f)
		if err != nil {
			return nil, buildErrorFor(templateName, fmt.Errorf("header %q: %w", name, err))
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, buildErrorFor(templateName, fmt.Errorf("header %q would contain a line break", name))
		}
		req.Header.Set(name, v)
	}
	switch t.auth {
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+t.token)
	case "basic":
		req.SetBasicAuth(t.username, t.token)
	case "header":
		req.Header.Set(t.authHeader, t.token)
	}
	return req, nil
}

// Read: a 2xx is delivered unless error_pointer names an error; its id is
// at id_pointer, and a 2xx without it may have been sent (outcome unknown).
// Anything else is refused, classified by HTTP status.
func (t *Template) Read(m Message, r Response) Result {
	// One request carries every recipient here (Twilio: one each), so
	// they all share the reply's outcome.
	res := resultFor(m)
	set := res.setAll
	mk := newMasker(m.Text)
	var doc any
	jsonErr := json.Unmarshal(r.Body, &doc)
	errText := ""
	if jsonErr == nil && t.errPtr != "" {
		errText = pointerString(doc, t.errPtr)
	}
	ok := r.Status >= 200 && r.Status <= 299
	switch {
	case ok && errText != "":
		set("", t.refusal(r.Status, errText, true, mk))
	case ok && t.idPointer == "":
		set(acceptedID, nil)
	case ok && jsonErr != nil:
		set("", unknownError(templateName, r.Status, "reply is not readable JSON"))
	case ok:
		id := pointerString(doc, t.idPointer)
		if id == "" {
			set("", unknownError(templateName, r.Status, "reply has no id at id_pointer"))
		} else {
			set(mk.messageID(templateName, r.Status, id, m.To))
		}
	default:
		providerBody := jsonErr == nil && (t.errPtr == "" || errText != "")
		set("", t.refusal(r.Status, errText, providerBody, mk))
	}
	return res
}

func (t *Template) refusal(status int, errText string, providerBody bool, mk masker) *Error {
	return legacyError(httpStatusClasses[status], status, providerBody,
		upstreamCause(templateName, status, "", errText, mk))
}

// pointerString resolves an RFC 6901 pointer and returns a string or number
// there as text; anything else (missing, null, false, objects) is "".
func pointerString(doc any, ptr string) string {
	cur := doc
	for _, tok := range strings.Split(ptr, "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return ""
			}
			cur = c[i]
		default:
			return ""
		}
	}
	switch v := cur.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		if v {
			return "true"
		}
	}
	return ""
}

// MaxRecipients is 1: templates describe one recipient per request.
func (t *Template) MaxRecipients() int { return 1 }

// RetryableReply: 429 only, with Retry-After (RFC 6585: the request was
// rejected). An arbitrary gateway's 503 may come from a front end after the
// back end took the message.
func (t *Template) RetryableReply(status int, hasRetryAfter bool) bool {
	return hasRetryAfter && status == http.StatusTooManyRequests
}

// DefaultEndpoint is the configured URL, for the startup report.
func (t *Template) DefaultEndpoint() *url.URL { u := *t.endpoint; return &u }

// Describe summarises the settings for `postern check`.
func (t *Template) Describe() string {
	auth := t.auth
	switch t.auth {
	case "basic":
		auth += " as " + t.username
	case "header":
		auth += " " + t.authHeader
	}
	s := fmt.Sprintf("%s %s, auth %s, body fields %s", t.method, t.contentType, auth, strings.Join(slices.Sorted(maps.Keys(t.body)), ","))
	if len(t.headers) > 0 {
		s += ", headers " + strings.Join(slices.Sorted(maps.Keys(t.headers)), ",")
	}
	if t.idPointer != "" {
		s += ", id at " + t.idPointer
	}
	if t.errPtr != "" {
		s += ", error at " + t.errPtr
	}
	return s
}
