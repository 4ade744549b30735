package rewrite

import (
	"context"
	"net/http"
	"net/url"
	"slices"
)

// DefaultClickatellOneEndpoint is the Clickatell One API send call.
const DefaultClickatellOneEndpoint = "https://platform.clickatell.com/v1/message"

// ClickatellOne is the "clickatell-one" provider: Clickatell's current One
// API, where accounts migrated off the legacy APIs now live. Build it with
// NewClickatellOne.
type ClickatellOne struct {
	cfg clickatellConfig
}

var _ Provider = (*ClickatellOne)(nil)

// ClickatellOneConfig holds the "clickatell-one" provider's own route keys: none beyond
// endpoint, token and from (Config).
type ClickatellOneConfig struct{}

// NewClickatellOne validates cfg (a token is required; an endpoint, when
// given, must be https) and fills the default endpoint.
func NewClickatellOne(cfg Config) (*ClickatellOne, error) {
	c, err := newClickatellConfig(apiOne, cfg, DefaultClickatellOneEndpoint)
	if err != nil {
		return nil, err
	}
	return &ClickatellOne{cfg: c}, nil
}

// Build returns the POST for m: one entry per recipient, because the One API
// takes a single "to" per message. The One API handles text encoding itself,
// so the legacy unicode/concat options have nothing to map to. The body is
//
//	{"messages":[{"channel":"sms","to":"...","content":"...","from":"..."}]}
//
// with "from" left out when there is no sender.
func (p *ClickatellOne) Build(ctx context.Context, m Message) (*http.Request, error) {
	body, err := p.PostBody(m)
	return p.cfg.post.build(ctx, &p.cfg.header, apiOne, body, err)
}

// PostBody is the body of Build's request for m (Poster).
func (p *ClickatellOne) PostBody(m Message) ([]byte, error) { return p.AppendPostBody(nil, m) }

// AppendPostBody appends PostBody(m) to dst (Poster).
func (p *ClickatellOne) AppendPostBody(dst []byte, m Message) ([]byte, error) {
	if err := checkMessage(m, p.MaxRecipients()); err != nil {
		return dst, buildErrorFor(apiOne, err)
	}
	from := p.cfg.sender(m)
	body := slices.Grow(dst, 16+len(m.To)*(64+jsonSize(m.Text)+len(from)))
	body = append(body, `{"messages":[`...)
	for i, to := range m.To {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"channel":"sms"`...)
		body = appendJSONField(body, false, "to", to)
		body = appendJSONField(body, false, "content", m.Text)
		if from != "" {
			body = appendJSONField(body, false, "from", from)
		}
		body = append(body, '}')
	}
	body = append(body, "]}"...)
	return body, nil
}

// PostTarget is the endpoint and the headers of every request (Poster).
func (p *ClickatellOne) PostTarget() (*url.URL, http.Header, error) {
	return p.cfg.post.target(&p.cfg.header, apiOne)
}

// Read interprets the One API reply. A 2xx is only success per recipient
// and only with a null top-level error; throttling arrives as 400/code 43.
func (p *ClickatellOne) Read(m Message, r Response) Result {
	return readClickatell(apiOne, m, r)
}

// MaxRecipients is 200, the One API's limit on messages per call.
func (p *ClickatellOne) MaxRecipients() int { return 200 }

// DefaultEndpoint is the URL requests go to (the configured one, or the
// default), for the proxy's startup report.
func (p *ClickatellOne) DefaultEndpoint() *url.URL { return p.cfg.defaultEndpoint() }

// RetryableReply: see clickatellRetryable.
func (p *ClickatellOne) RetryableReply(status int, hasRetryAfter bool) bool {
	return clickatellRetryable(status, hasRetryAfter)
}
