package rewrite

import (
	"context"
	"net/http"
	"net/url"
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

// platformMessage is the Platform API request body: "content", not "text",
// and every recipient in one "to" array.
type platformMessage struct {
	Content         string   `json:"content"`
	To              []string `json:"to"`
	From            string   `json:"from,omitempty"`
	ClientMessageID string   `json:"clientMessageId,omitempty"`
}

// Build returns the POST for m. The Platform API takes UTF-8 content and
// chooses the encoding itself, so unicode/concat have nothing to map to.
func (p *ClickatellPlatform) Build(ctx context.Context, m Message) (*http.Request, error) {
	if err := checkMessage(m, p.MaxRecipients()); err != nil {
		return nil, buildErrorFor(apiPlatform, err)
	}
	body := platformMessage{Content: m.Text, To: m.To, From: p.cfg.sender(m), ClientMessageID: m.Options.ClientMessageID}
	req, err := newJSONRequest(ctx, p.cfg.endpoint, body)
	if err != nil {
		return nil, buildErrorFor(apiPlatform, err)
	}
	// Like the One API, the raw key: no "Bearer".
	req.Header.Set("Authorization", p.cfg.token)
	return req, nil
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
