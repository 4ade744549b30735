package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/deliver"
	"github.com/postern/postern/rewrite"
)

// Translate shows what postern would send for a legacy request URL without
// sending anything: the matching route, then each provider request (method,
// URL, headers, body) with every secret replaced by <redacted>. An absolute
// URL is matched as a proxy request; a bare path as a direct request.
func Translate(ctx context.Context, c *config.Config, rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", errors.New("not a valid URL")
	}
	route := c.Match(u.Host, u.Path)
	if route == nil {
		return "", fmt.Errorf("no route matches host %q path %q: postern would answer 403", config.HostOnly(u.Host), u.Path)
	}
	in := rewrite.Inbound{Method: "GET", Host: config.HostOnly(u.Host), Path: u.Path, RawQuery: u.RawQuery}
	msg, err := route.Dialect.Parse(in)
	if err != nil {
		var e *rewrite.Error
		if errors.As(err, &e) {
			return "", fmt.Errorf("route %q: postern would answer %d %q", route.Name, e.Status, strings.TrimSpace(route.Dialect.ReplyError(e).Body))
		}
		return "", fmt.Errorf("route %q: %w", route.Name, err)
	}
	if len(msg.To) > route.MaxRecipients {
		return "", fmt.Errorf("route %q: %d recipients, max_recipients is %d", route.Name, len(msg.To), route.MaxRecipients)
	}
	if seg := rewrite.CountSegments(msg.Text); seg.Count > route.MaxSegments {
		return "", fmt.Errorf("route %q: the text needs %d SMS parts, max_segments is %d", route.Name, seg.Count, route.MaxSegments)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# route %q: %s -> %s\n", route.Name, route.Inbound, route.ProviderName)
	if route.Provider == nil {
		fmt.Fprintf(&b, "# sandbox: nothing would be sent; ISE would get 200 \"ID: sandbox-<n>\" for %d recipient(s)\n", len(msg.To))
		return b.String(), nil
	}
	for _, batch := range deliver.Batches(msg, route.Provider.MaxRecipients()) {
		req, err := route.Provider.Build(ctx, batch)
		if err != nil {
			return "", fmt.Errorf("route %q: building request: %w", route.Name, redactErr(c, err))
		}
		fmt.Fprintf(&b, "%s %s\n", req.Method, req.URL)
		keys := make([]string, 0, len(req.Header))
		for k := range req.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			for _, v := range req.Header[k] {
				if k == "Authorization" || k == "Proxy-Authorization" {
					v = redactAuthorization(v)
				}
				fmt.Fprintf(&b, "%s: %s\n", k, v)
			}
		}
		b.WriteString("\n")
		if req.Body != nil {
			body, err := io.ReadAll(req.Body)
			if err != nil {
				return "", fmt.Errorf("route %q: reading built body: %w", route.Name, err)
			}
			b.Write(bytes.TrimRight(body, "\n"))
			b.WriteString("\n")
		}
	}
	return c.Redact(b.String()), nil
}

func redactErr(c *config.Config, err error) error { return errors.New(c.Redact(err.Error())) }

// redactAuthorization keeps the scheme ("Bearer", "Basic") so an operator can
// see which kind of credential goes out, and hides the credential.
func redactAuthorization(v string) string {
	if scheme, _, ok := strings.Cut(v, " "); ok && !strings.ContainsAny(scheme, "=:") {
		return scheme + " <redacted>"
	}
	return "<redacted>"
}
