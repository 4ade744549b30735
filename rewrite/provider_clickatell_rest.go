package rewrite

import (
	"context"
	"github.com/postern/postern/internal/jsonenc"
	"net/http"
	"net/url"
	"slices"
)

// DefaultClickatellRESTEndpoint is the legacy Clickatell REST API send call.
const DefaultClickatellRESTEndpoint = "https://api.clickatell.com/rest/message"

// ClickatellREST is the "clickatell-rest" provider: Clickatell's legacy
// (Developers' Central) REST API, the one ISE itself switched to once its
// POST support was fixed. Build it with NewClickatellREST.
type ClickatellREST struct {
	cfg clickatellConfig
}

var _ Provider = (*ClickatellREST)(nil)

// ClickatellRESTConfig holds the "clickatell-rest" provider's own route keys: none beyond
// endpoint, token and from (Config).
type ClickatellRESTConfig struct{}

// NewClickatellREST validates cfg (a token is required; an endpoint, when
// given, must be https) and fills the default endpoint.
func NewClickatellREST(cfg Config) (*ClickatellREST, error) {
	c, err := newClickatellConfig(apiREST, cfg, DefaultClickatellRESTEndpoint)
	if err != nil {
		return nil, err
	}
	c.header = c.header.withVersion("1") // the legacy REST API's required version header
	return &ClickatellREST{cfg: c}, nil
}

// Build returns the POST for m. A sender always goes with "mo":"1": a
// two-way number is only accepted on reply-capable routes. Optional fields
// are omitted rather than sent as zero, so the account's own defaults
// apply:
//
//	{"text":"...","to":["..."],"from":"...","mo":"1","clientMessageId":"...","callback":7,"maxMessageParts":3}
func (p *ClickatellREST) Build(ctx context.Context, m Message) (*http.Request, error) {
	body, err := p.PostBody(m)
	return p.cfg.post.build(ctx, &p.cfg.header, apiREST, body, err)
}

// PostBody is the body of Build's request for m (Poster).
func (p *ClickatellREST) PostBody(m Message) ([]byte, error) { return p.AppendPostBody(nil, m) }

// AppendPostBody appends PostBody(m) to dst (Poster).
func (p *ClickatellREST) AppendPostBody(dst []byte, m Message) ([]byte, error) {
	if err := checkMessage(m, p.MaxRecipients()); err != nil {
		return dst, buildErrorFor(apiREST, err)
	}
	from, id := p.cfg.sender(m), m.Options.ClientMessageID
	body := slices.Grow(dst, 128+jsonSize(m.Text)+len(m.To)*18+len(from)+len(id))
	body = append(body, '{')
	body = appendJSONField(body, true, "text", m.Text)
	body = append(body, `,"to":`...)
	body = jsonenc.AppendStrings(body, m.To)
	if from != "" {
		body = appendJSONField(body, false, "from", from)
		body = append(body, `,"mo":"1"`...)
	}
	if id != "" {
		body = appendJSONField(body, false, "clientMessageId", id)
	}
	if n := m.Options.Callback; n != 0 {
		body = appendJSONInt(body, "callback", n)
	}
	if n := m.Options.Concat; n != 0 {
		body = appendJSONInt(body, "maxMessageParts", n)
	}
	body = append(body, '}')
	return body, nil
}

// PostTarget is the endpoint and the headers of every request (Poster).
func (p *ClickatellREST) PostTarget() (*url.URL, http.Header, error) {
	return p.cfg.post.target(&p.cfg.header, apiREST)
}

// Read interprets the REST reply: data.message[] per recipient, or a
// top-level error that fails them all.
func (p *ClickatellREST) Read(m Message, r Response) Result {
	return readClickatell(apiREST, m, r)
}

// MaxRecipients is 200, the lower of the two limits Clickatell documents.
func (p *ClickatellREST) MaxRecipients() int { return 200 }

// DefaultEndpoint is the URL requests go to (the configured one, or the
// default), for the proxy's startup report.
func (p *ClickatellREST) DefaultEndpoint() *url.URL { return p.cfg.defaultEndpoint() }

// RetryableReply: see clickatellRetryable.
func (p *ClickatellREST) RetryableReply(status int, hasRetryAfter bool) bool {
	return clickatellRetryable(status, hasRetryAfter)
}
