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

// Helpers every provider uses to check its config and build its request.

// providerName labels a provider in causes.
type providerName string

func (p providerName) String() string { return string(p) }

// checkMessage rejects what no provider API accepts, before anything is
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

// newFormRequest encodes form with net/url (never by concatenation).
func newFormRequest(ctx context.Context, method string, endpoint *url.URL, form url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, endpoint.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", formContentType)
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// checkToken says what is wrong with a token, or "".
func checkToken(token string) string {
	switch {
	case token == "":
		return "token is required"
	case strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		// A space means a pasted "Bearer ..." or a stray newline; either
		// would break or inject the Authorization header.
		return "token must not contain spaces or control characters"
	}
	return ""
}

// checkEndpoint says what is wrong with a configured endpoint, or "".
func checkEndpoint(u *url.URL) string {
	switch {
	case u.Scheme != "https" || u.Host == "":
		return "endpoint must be an absolute https:// URL"
	case u.User != nil:
		return "endpoint must not carry credentials; use token"
	}
	return ""
}

// buildErrorFor is a Build failure: nothing was sent, and the fault is ours.
func buildErrorFor(name fmt.Stringer, cause error) *Error {
	return &Error{
		Status:      http.StatusInternalServerError,
		Code:        CodeInternal,
		Description: "Internal error",
		Outcome:     Refused,
		Cause:       fmt.Errorf("building %s request: %w", name, cause),
	}
}
