package rewrite

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// clickatellConfig is a validated Config shared by both Clickatell providers.
type clickatellConfig struct {
	endpoint *url.URL     // never nil after newClickatellConfig
	post     postTemplate // the POST to endpoint, made once
	header   fixedHeader
	token    string
	from     string // normalised sender, "" = none
}

// newClickatellConfig validates cfg and fills the default endpoint. It reports
// every problem at once and never quotes the token.
func newClickatellConfig(api clickatellAPI, cfg Config, defaultEndpoint string) (clickatellConfig, error) {
	var errs []error
	c := clickatellConfig{token: cfg.Token}
	switch {
	case cfg.Token == "":
		errs = append(errs, fmt.Errorf("%s: token is required", api))
	case strings.IndexFunc(cfg.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		// A space means a pasted "Bearer ..." or a stray newline; either
		// would break or inject the Authorization header.
		errs = append(errs, fmt.Errorf("%s: token must not contain spaces or control characters", api))
	}
	if cfg.From != "" {
		if from, ok := normalizeSender(cfg.From); ok {
			c.from = from
		} else {
			errs = append(errs, fmt.Errorf("%s: from must be a phone number or an alphanumeric sender id of at most 11 characters", api))
		}
	}
	if cfg.Endpoint != nil {
		u := *cfg.Endpoint // copy: the caller's URL must not change under us
		switch {
		case u.Scheme != "https" || u.Host == "":
			// The token would travel in clear text otherwise.
			errs = append(errs, fmt.Errorf("%s: endpoint must be an absolute https:// URL", api))
		case u.User != nil:
			errs = append(errs, fmt.Errorf("%s: endpoint must not carry credentials; use token", api))
		}
		c.endpoint = &u
	} else {
		u, err := url.Parse(defaultEndpoint)
		if err != nil {
			panic(err) // a constant in this package; cannot fail
		}
		c.endpoint = u
	}
	c.post = newPostTemplate(c.endpoint)
	// The One and Platform APIs take the raw key ("Bearer <key>" is
	// rejected as 401); the REST API wants the Bearer form.
	auth := c.token
	if api == apiREST {
		auth = "Bearer " + c.token
	}
	c.header = newFixedHeader("application/json", auth)
	return c, errors.Join(errs...)
}

// sender is the From the request carries: the route's configured sender wins
// over what the legacy client asked for, because the account's registered
// number is what the law and Clickatell's routing require.
func (c clickatellConfig) sender(m Message) string {
	if c.from != "" {
		return c.from
	}
	return m.From
}

// defaultEndpoint returns a copy so callers cannot alter the provider.
func (c clickatellConfig) defaultEndpoint() *url.URL {
	u := *c.endpoint
	return &u
}

// clickatellRetryable is the Clickatell APIs' retry rule: 429 (rate limit)
// and 503 ("temporary error; retry", One API code 19), with Retry-After.
// Only a reply carrying Clickatell's own error body gets here (Read sets
// Failover on a 5xx only then), so the provider itself answered and took
// nothing.
func clickatellRetryable(status int, hasRetryAfter bool) bool {
	return hasRetryAfter && (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable)
}
