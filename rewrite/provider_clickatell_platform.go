package rewrite

import (
	"context"
	"github.com/postern/postern/internal/jsonenc"
	"net/http"
	"net/url"
	"slices"
)

// DefaultClickatellPlatformEndpoint is the archived Platform API send call.
const DefaultClickatellPlatformEndpoint = "https://platform.clickatell.com/messages"

// ClickatellPlatform is the "clickatell-platform" provider: Clickatell's
// Platform SMS REST API, archived but still serving many accounts created
// between the legacy APIs and the One API. Build it with
// NewClickatellPlatform.
type ClickatellPlatform struct {
	cfg clickatellConfig
}

var _ Provider = (*ClickatellPlatform)(nil)

// ClickatellPlatformConfig holds the "clickatell-platform" provider's own route keys: none beyond
// endpoint, token and from (Config).
type ClickatellPlatformConfig struct{}

// NewClickatellPlatform validates cfg (a token is required; an endpoint,
// when given, must be https) and fills the default endpoint.
func NewClickatellPlatform(cfg Config) (*ClickatellPlatform, error) {
	c, err := newClickatellConfig(apiPlatform, cfg, DefaultClickatellPlatformEndpoint)
	if err != nil {
		return nil, err
	}
	return &ClickatellPlatform{cfg: c}, nil
}

// Build returns the POST for m. The Platform API takes UTF-8 content and
// chooses the encoding itself, so unicode/concat have nothing to map to.
// The body is "content", not "text", and every recipient in one "to" array:
//
//	{"content":"...","to":["..."],"from":"...","clientMessageId":"..."}
//
// with "from" and "clientMessageId" left out when empty.
func (p *ClickatellPlatform) Build(ctx context.Context, m Message) (*http.Request, error) {
	body, err := p.PostBody(m)
	return p.cfg.post.build(ctx, &p.cfg.header, apiPlatform, body, err)
}

// PostBody is the body of Build's request for m (Poster).
func (p *ClickatellPlatform) PostBody(m Message) ([]byte, error) { return p.AppendPostBody(nil, m) }

// AppendPostBody appends PostBody(m) to dst (Poster).
func (p *ClickatellPlatform) AppendPostBody(dst []byte, m Message) ([]byte, error) {
	if err := checkMessage(m, p.MaxRecipients()); err != nil {
		return dst, buildErrorFor(apiPlatform, err)
	}
	from, id := p.cfg.sender(m), m.Options.ClientMessageID
	body := slices.Grow(dst, 64+jsonSize(m.Text)+len(m.To)*18+len(from)+len(id))
	body = append(body, '{')
	body = appendJSONField(body, true, "content", m.Text)
	body = append(body, `,"to":`...)
	body = jsonenc.AppendStrings(body, m.To)
	if from != "" {
		body = appendJSONField(body, false, "from", from)
	}
	if id != "" {
		body = appendJSONField(body, false, "clientMessageId", id)
	}
	body = append(body, '}')
	return body, nil
}

// PostTarget is the endpoint and the headers of every request (Poster).
func (p *ClickatellPlatform) PostTarget() (*url.URL, http.Header, error) {
	return p.cfg.post.target(&p.cfg.header, apiPlatform)
}

// Read interprets messages[].apiMessageId/accepted/to and the error object
// (with its errorCode/errorDescription siblings), at both levels.
func (p *ClickatellPlatform) Read(m Message, r Response) Result {
	return readClickatell(apiPlatform, m, r)
}

// MaxRecipients is 200, the Platform API's documented limit.
func (p *ClickatellPlatform) MaxRecipients() int { return 200 }

// DefaultEndpoint is the URL requests go to (the configured one, or the
// default), for the proxy's startup report.
func (p *ClickatellPlatform) DefaultEndpoint() *url.URL { return p.cfg.defaultEndpoint() }

// RetryableReply: see clickatellRetryable.
func (p *ClickatellPlatform) RetryableReply(status int, hasRetryAfter bool) bool {
	return clickatellRetryable(status, hasRetryAfter)
}
