package rewrite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// clickatellConfig is a validated Config shared by both Clickatell providers.
type clickatellConfig struct {
	endpoint *url.URL // never nil after newClickatellConfig
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

// buildError is a Build failure: nothing was sent, so the outcome is
// Refused, and the fault is ours, so the status is 500.
func buildError(api clickatellAPI, cause error) *Error {
	return &Error{
		Status:      http.StatusInternalServerError,
		Code:        CodeInternal,
		Description: "Internal error",
		Outcome:     Refused,
		Cause:       fmt.Errorf("building %s request: %w", api, cause),
	}
}

// checkMessage rejects what no Clickatell API accepts, before anything is
// built; the proxy is expected to have split batches already.
func checkMessage(m Message, max int) error {
	switch {
	case len(m.To) == 0:
		return errors.New("message has no recipients")
	case len(m.To) > max:
		return fmt.Errorf("message has %d recipients, at most %d per request", len(m.To), max)
	case m.Text == "":
		return errors.New("message text is empty")
	}
	for i, to := range m.To {
		if n, err := NormalizeNumber(to); err != nil || n != to {
			return fmt.Errorf("recipient %d is not a normalised number", i+1)
		}
	}
	return nil
}

// newJSONRequest encodes v with encoding/json (HTML escaping off, so "&" and
// "<" in a password reach the handset unchanged) and builds the POST.
func newJSONRequest(ctx context.Context, endpoint *url.URL, v any) (*http.Request, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	return req, nil
}
