package rewrite

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
)

// twilioAPIBase is Twilio's REST host; the send call is
// /2010-04-01/Accounts/{AccountSid}/Messages.json under it.
const twilioAPIBase = "https://api.twilio.com/2010-04-01/Accounts/"

// Twilio SIDs: two letters and 32 hex digits (Twilio's OpenAPI patterns).
var (
	accountSIDRE = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	apiKeySIDRE  = regexp.MustCompile(`^SK[0-9a-fA-F]{32}$`)
	serviceSIDRE = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
)

const twilioName providerName = "twilio"

// Twilio is the "twilio" provider: Programmable Messaging's Create Message
// call, one request per recipient, form-encoded, HTTP Basic auth with the
// account SID (or an API key SID) and the token. Build it with NewTwilio.
type Twilio struct {
	endpoint *url.URL
	post     postTemplate // the POST to endpoint, made once
	// header carries the Authorization SetBasicAuth(user, token) would
	// set, computed once.
	header  fixedHeader
	user    string // account SID or API key SID
	token   string
	from    string // normalised sender; "" when a Messaging Service sends
	service string // MG... Messaging Service SID
}

var _ Provider = (*Twilio)(nil)

// TwilioConfig holds the "twilio" provider's own route keys.
type TwilioConfig struct {
	AccountSID          string `toml:"account_sid"`           // AC..., in the URL path and the default Basic user
	APIKeySID           string `toml:"api_key_sid"`           // SK..., the Basic user instead of AccountSID
	MessagingServiceSID string `toml:"messaging_service_sid"` // MG..., sent instead of From
}

// NewTwilio validates cfg and tw: token and account_sid are required, and exactly
// one of from and messaging_service_sid (Twilio's own rule). Problems are
// reported all at once and never quote the token.
func NewTwilio(cfg Config, tw TwilioConfig) (*Twilio, error) {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Err: fmt.Errorf("twilio: "+format, args...)})
	}
	if msg := checkToken(cfg.Token); msg != "" {
		add("token", "%s", msg)
	}
	t := &Twilio{user: tw.AccountSID, token: cfg.Token, service: tw.MessagingServiceSID}
	switch {
	case tw.AccountSID == "":
		add("account_sid", "account_sid is required (AC followed by 32 hex digits)")
	case !accountSIDRE.MatchString(tw.AccountSID):
		add("account_sid", "account_sid must be AC followed by 32 hex digits")
	}
	if tw.APIKeySID != "" {
		if !apiKeySIDRE.MatchString(tw.APIKeySID) {
			add("api_key_sid", "api_key_sid must be SK followed by 32 hex digits")
		}
		t.user = tw.APIKeySID
	}
	switch {
	case tw.MessagingServiceSID != "" && cfg.From != "":
		add("messaging_service_sid", "set from or messaging_service_sid, not both")
	case tw.MessagingServiceSID != "":
		if !serviceSIDRE.MatchString(tw.MessagingServiceSID) {
			add("messaging_service_sid", "messaging_service_sid must be MG followed by 32 hex digits")
		}
	case cfg.From == "":
		add("from", "from (a Twilio number or sender id) or messaging_service_sid is required")
	default:
		from, ok := normalizeSender(cfg.From)
		if !ok {
			add("from", "from must be a phone number or an alphanumeric sender id of at most 11 characters")
		}
		if n, err := NormalizeNumber(from); err == nil {
			from = "+" + n // a number goes in E.164; a sender id as it is
		}
		t.from = from
	}
	if cfg.Endpoint != nil {
		if msg := checkEndpoint(cfg.Endpoint); msg != "" {
			add("endpoint", "%s", msg)
		}
		u := *cfg.Endpoint
		t.endpoint = &u
	} else if accountSIDRE.MatchString(tw.AccountSID) {
		u, err := url.Parse(twilioAPIBase + tw.AccountSID + "/Messages.json")
		if err != nil {
			panic(err) // a constant and a checked SID; cannot fail
		}
		t.endpoint = u
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	t.post = newPostTemplate(t.endpoint)
	t.header = newFixedHeader(formContentType, "Basic "+base64.StdEncoding.EncodeToString([]byte(t.user+":"+t.token)))
	return t, nil
}

// Build returns the Create Message POST for m's one recipient, the form
// url.Values would encode (keys sorted):
//
//	Body=...&From=...&To=%2B...   (MessagingServiceSid=... instead of From)
func (t *Twilio) Build(ctx context.Context, m Message) (*http.Request, error) {
	body, err := t.PostBody(m)
	return t.post.build(ctx, &t.header, twilioName, body, err)
}

// PostBody is the body of Build's request for m (Poster).
func (t *Twilio) PostBody(m Message) ([]byte, error) { return t.AppendPostBody(nil, m) }

// AppendPostBody appends PostBody(m) to dst (Poster).
func (t *Twilio) AppendPostBody(dst []byte, m Message) ([]byte, error) {
	if err := checkMessage(m, t.MaxRecipients()); err != nil {
		return dst, buildErrorFor(twilioName, err)
	}
	body := slices.Grow(dst, 64+3*len(m.Text)+len(t.from)+len(t.service)+len(m.To[0]))
	body = append(body, "Body="...)
	body = appendQueryEscape(body, m.Text)
	if t.service != "" {
		body = append(body, "&MessagingServiceSid="...)
		body = appendQueryEscape(body, t.service)
	} else {
		body = append(body, "&From="...)
		body = appendQueryEscape(body, t.from)
	}
	body = append(body, "&To=%2B"...)
	body = appendQueryEscape(body, m.To[0])
	return body, nil
}

// PostTarget is the endpoint and the headers of every request (Poster).
func (t *Twilio) PostTarget() (*url.URL, http.Header, error) {
	return t.post.target(&t.header, twilioName)
}

// twilioReply is the union of a created message and Twilio's error body.
type twilioReply struct {
	SID          flexString `json:"sid"`
	Status       flexString `json:"status"` // message status, or HTTP status in an error
	ErrorCode    flexString `json:"error_code"`
	ErrorMessage flexString `json:"error_message"`
	Code         flexString `json:"code"`
	Message      flexString `json:"message"`
}

// twilioCodeClasses maps Twilio error codes to legacy classes. Twilio warns
// that codes get refined, so an unknown code falls back to the HTTP status.
var twilioCodeClasses = map[string]errClass{
	"20003": classAuth, "20005": classAuth, "20404": classAuth,
	"20429": classThrottled,
	"21211": classDestination, "21214": classDestination, "21217": classDestination, "21401": classDestination,
	"21407": classDestination, "21408": classDestination, "21421": classDestination, "21610": classDestination,
	"21612": classDestination, "21614": classDestination, "30003": classDestination, "30005": classDestination, "30006": classDestination,
	"21212": classSource, "21603": classSource, "21606": classSource, "21659": classSource, "21660": classSource,
}

// Read interprets the reply: 201 with a message sid (queued or accepted) is
// delivered; Twilio's error JSON (code, message, status) is a refusal; a 2xx
// without a readable sid may have been sent.
func (t *Twilio) Read(m Message, r Response) Result {
	// One request carries every recipient here (Twilio: one each), so
	// they all share the reply's outcome.
	res := resultFor(m)
	set := res.setAll
	var fold [256]byte
	mk := newMaskerInto(m.Text, fold[:0])
	body, jsonErr := decodeTwilioReply(r.Body)
	ok := r.Status >= 200 && r.Status <= 299
	switch {
	case ok && jsonErr != nil:
		set("", unknownError(twilioName, r.Status, "reply is not readable JSON"))
	case ok && (body.Status == "failed" || body.Status == "undelivered" || body.ErrorCode != "" && body.ErrorCode != "0"):
		set("", t.refusal(r.Status, string(body.ErrorCode), string(body.ErrorMessage), true, mk))
	case ok && body.SID == "":
		set("", unknownError(twilioName, r.Status, "reply has no message sid"))
	case ok:
		set(mk.messageID(twilioName, r.Status, string(body.SID), m.To))
	default:
		set("", t.refusal(r.Status, string(body.Code), string(body.Message), jsonErr == nil && body.Code != "", mk))
	}
	return res
}

func (t *Twilio) refusal(status int, code, message string, providerBody bool, mk masker) *Error {
	class, known := twilioCodeClasses[code]
	if !known {
		class = httpStatusClasses[status]
	}
	if _, err := strconv.Atoi(code); err != nil {
		code = ""
	}
	return legacyError(class, status, providerBody, upstreamCause(twilioName, status, code, message, mk))
}

// MaxRecipients is 1: Twilio's Create Message takes one To.
func (t *Twilio) MaxRecipients() int { return 1 }

// RetryableReply: 429 only, with Retry-After. It is error 20429, which
// Twilio documents as "not processed, safe to retry with backoff"; a 503 is
// not documented that way and is not retried.
func (t *Twilio) RetryableReply(status int, hasRetryAfter bool) bool {
	return hasRetryAfter && status == http.StatusTooManyRequests
}

// DefaultEndpoint is the URL requests go to, for the startup report.
func (t *Twilio) DefaultEndpoint() *url.URL { u := *t.endpoint; return &u }

// Describe summarises the settings for `postern check`; SIDs are account
// identifiers, not secrets.
func (t *Twilio) Describe() string {
	s := "one request per recipient, Basic auth as " + t.user
	if t.service != "" {
		return s + ", Messaging Service " + t.service
	}
	return s + ", From " + t.from
}
