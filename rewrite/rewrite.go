// Package rewrite translates legacy SMS gateway requests into provider REST
// requests and provider replies back into legacy replies.
//
// Everything here is pure: no sockets, no files, no clocks, no logging. The
// proxy package reads the inbound request (with its own size limits) into an
// Inbound, asks a Dialect for a Message, asks a Provider for the outbound
// *http.Request, sends it, hands the reply back as a Response and asks the
// Provider for a Result, which the Dialect turns into the legacy reply. That
// split keeps every translation table-testable and fuzzable.
package rewrite

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Inbound is a legacy request as the proxy received it, already read and
// size-limited. Dialects never see the raw *http.Request, so they cannot do
// I/O and cannot forward inbound headers by accident.
type Inbound struct {
	Method      string // GET or POST
	Host        string // host the request was addressed to, without port
	Path        string // URL path, decoded
	RawQuery    string // undecoded query string, exactly as received
	ContentType string // media type of Body, parameters stripped
	Body        []byte // request body (empty for GET)
}

// Options carries the optional legacy parameters a provider may honour.
// Providers that do not support an option ignore it; it is never an error.
type Options struct {
	MO              bool   // reply-capable route requested (mo=1)
	Concat          int    // maximum number of parts, 0 = provider default
	ClientMessageID string // client's own message id (climsgid)
	Callback        int    // status callback mask (callback), 0 = none
	DeliveryAck     bool   // deliv_ack=1
}

// Message is one SMS to one or more recipients, independent of any dialect
// or provider.
type Message struct {
	// To holds the recipients as international numbers, digits only, no
	// leading "+" or "00" (e.g. "15551234567"). Always 7 to 15 digits.
	To []string
	// Text is the message text, valid UTF-8, never empty.
	Text string
	// From is the sender the legacy request asked for ("" = none). The route's
	// configured sender, when set, takes precedence (see Config.From).
	From    string
	Options Options
}

// Outcome says what is known about a message after an attempt.
type Outcome int

const (
	// Delivered: the provider accepted the message and gave an id.
	Delivered Outcome = iota + 1
	// Refused: the provider or postern said no; the message was not sent.
	Refused
	// Unknown: the request may have reached the provider; follow up by hand.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Refused:
		return "refused"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Legacy error codes (Clickatell HTTP API numbering), the codes ISE's logs
// show after "ERR:".
const (
	CodeAuthFailed         = "001" // Authentication failed
	CodeMissingParams      = "101" // Invalid or missing parameters
	CodeInvalidDestination = "105" // Invalid destination address
	CodeInvalidSource      = "106" // Invalid source address
	CodeEmptyMessage       = "107" // Empty message
	CodeTooManyParts       = "113" // Maximum message parts exceeded
	CodeCannotRoute        = "114" // Cannot route message
	CodeInvalidUnicode     = "116" // Invalid Unicode data
	CodeThrottled          = "130" // Maximum MT limit exceeded
	CodeNoCredit           = "301" // No credit left
	CodeInternal           = "901" // Internal error
)

// Error is a failure as ISE may see it: the HTTP status, the legacy code and
// a description that never contains message text or secrets. The cause (which
// may be raw upstream detail) is only for the audit log.
type Error struct {
	Status      int     // HTTP status for the reply to ISE
	Code        string  // legacy code, e.g. "105"
	Description string  // legacy description, safe to show
	Outcome     Outcome // Refused or Unknown
	// Failover is set when the provider certainly did not accept the
	// message and the fault lies with the provider or the account there,
	// not with the message: unreachable (refused, DNS, TLS, before anything
	// was written), throttled (429, One API code 43), failing (5xx with a
	// provider error body), authentication failed or out of credit. Another
	// provider may then take the same message. Never set with Unknown, nor
	// for an invalid number or text, which another provider would refuse too.
	Failover bool
	Cause    error // internal detail, never shown to ISE
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s, %s: %v", e.Code, e.Description, e.Cause)
	}
	return fmt.Sprintf("%s, %s", e.Code, e.Description)
}

func (e *Error) Unwrap() error { return e.Cause }

// BadRequest is a 400 refusal of the legacy request itself.
func BadRequest(code, description string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: code, Description: description, Outcome: Refused}
}

// Recipient is the outcome for one recipient.
type Recipient struct {
	To  string // digits, as in Message.To
	ID  string // provider message id when delivered
	Err *Error // non-nil when not delivered
	// Sandbox: accepted by the sandbox provider, which sends nothing. The
	// client is answered as if delivered (ID is a sandbox id), but the
	// audit line, metrics and reports say "sandbox", never "delivered".
	Sandbox bool
}

// Result is what a provider said about a Message: one entry per recipient,
// in Message.To order.
type Result struct {
	Recipients []Recipient
}

// resultFor returns a Result with one Recipient per m.To, in order, for a
// provider's Read to fill in.
func resultFor(m Message) Result {
	res := Result{Recipients: make([]Recipient, len(m.To))}
	for i, to := range m.To {
		res.Recipients[i].To = to
	}
	return res
}

// setAll gives every recipient the same outcome.
func (r Result) setAll(id string, e *Error) {
	for i := range r.Recipients {
		r.Recipients[i].ID, r.Recipients[i].Err = id, e
	}
}

// Response is a provider's HTTP reply, already read (size-limited) by the
// proxy.
type Response struct {
	Status int
	Header http.Header // may be nil for a 2xx reply: no provider reads a success's headers
	Body   []byte
}

// Reply is what postern answers to the legacy client.
type Reply struct {
	Status      int
	ContentType string
	Body        string
}

// Dialect reads one legacy request format and writes its replies.
type Dialect interface {
	// Parse turns a legacy request into a Message. A *Error is returned for
	// anything it cannot accept; nothing may be sent then.
	Parse(in Inbound) (Message, error)
	// Reply formats a provider Result for the legacy client.
	Reply(r Result) Reply
	// ReplyError formats a failure that affected the whole message.
	ReplyError(e *Error) Reply
}

// Provider builds requests for one provider API and reads its replies.
type Provider interface {
	// Build returns the request to send for m. It must not do I/O; the
	// body is encoded by encoding/json or net/url, or by the append
	// encoders that write the same bytes (jsonappend.go), never by
	// concatenating unescaped values.
	Build(ctx context.Context, m Message) (*http.Request, error)
	// Read interprets the provider's reply to the request built for m.
	Read(m Message, r Response) Result
	// MaxRecipients is how many recipients one request may carry; the
	// proxy splits larger messages into batches.
	MaxRecipients() int
	// RetryableReply says whether a reply with this status (429 or 503,
	// which the provider's Read refused with Failover set: it answered
	// itself and took nothing) certainly means "not processed", so that
	// sending again cannot double the message. hasRetryAfter reports a
	// valid Retry-After header: the provider saying when to come back.
	RetryableReply(status int, hasRetryAfter bool) bool
}

// Poster is a Provider whose every request is a POST of a body to one
// endpoint with the same headers: the Clickatell APIs and Twilio, not the
// template provider (its headers are templates). A sender that writes
// HTTP/1.1 itself (proxy/deliver's pool) renders the request line and the
// headers once and sends each message's body after them. Build's request
// is made from the same two parts, so both say the same
// (FuzzBodiesSameAsEncoders, TestPreparedPostSendsWhatBuildSays in proxy/deliver).
type Poster interface {
	Provider
	// PostTarget is the endpoint, as Build's request URL has it, and the
	// headers every request carries (User-Agent and Content-Length are
	// the sender's). Both are shared: read only. The error is Build's
	// for every message when the endpoint cannot make a request.
	PostTarget() (endpoint *url.URL, header http.Header, err error)
	// PostBody is the body of the request Build makes for m, or Build's
	// error for m.
	PostBody(m Message) ([]byte, error)
	// AppendPostBody appends PostBody(m) to dst, so that a sender can
	// make the body in place in its request buffer. On error dst comes
	// back as it was.
	AppendPostBody(dst []byte, m Message) ([]byte, error)
}

// Config is what every provider takes from its route, secrets already
// resolved. A provider's own keys come in its own struct (TwilioConfig,
// TemplateConfig, ...), registered in registry.go.
type Config struct {
	Endpoint *url.URL // full URL of the send call; nil = provider default
	Token    string   // API key or token (secret)
	From     string   // configured sender, overrides Message.From when set
}

// DialectConfig is what every dialect takes from its route. A dialect's own
// keys come in its own struct (QueryConfig), registered in registry.go.
type DialectConfig struct {
	// DefaultCountry (ISO code, e.g. "GB") reads recipients without a
	// country code as national numbers of that country.
	DefaultCountry string
	// MaxRecipients refuses a request naming more recipients (400 ERR:
	// 101), counted as written before any is normalised; 0 = no limit.
	MaxRecipients int
}

// KeyError is a provider config problem that belongs to one route key (e.g.
// "body.text"), so the proxy can point at its line.
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }
