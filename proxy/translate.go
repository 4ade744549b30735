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

	"github.com/postern/postern/rewrite"
)

// Translate shows what postern would send for a legacy request URL without
// sending anything: the matching route, then each provider request (method,
// URL, headers, body) with every secret replaced by <redacted>. An absolute
// URL is matched as a proxy request; a bare path as a direct request.
func (c *Config) Translate(ctx context.Context, rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", errors.New("not a valid URL")
	}
	route := c.Match(u.Host, u.Path)
	if route == nil {
		return "", fmt.Errorf("no route matches host %q path %q: postern would answer 403", hostOnly(u.Host), u.Path)
	}
	in := rewrite.Inbound{Method: "GET", Host: hostOnly(u.Host), Path: u.Path, RawQuery: u.RawQuery}
	msg, err := route.dialect.Parse(in)
	if err != nil {
		var e *rewrite.Error
		if errors.As(err, &e) {
			return "", fmt.Errorf("route %q: postern would answer %d %q", route.Name, e.Status, strings.TrimSpace(route.dialect.ReplyError(e).Body))
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
	if route.provider == nil {
		fmt.Fprintf(&b, "# sandbox: nothing would be sent; ISE would get 200 \"ID: sandbox-<n>\" for %d recipient(s)\n", len(msg.To))
		return b.String(), nil
	}
	for _, batch := range batches(msg, route.provider.MaxRecipients()) {
		req, err := route.provider.Build(ctx, batch)
		if err != nil {
			return "", fmt.Errorf("route %q: building request: %w", route.Name, c.redactErr(err))
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
	return c.redact(b.String()), nil
}

func (c *Config) redactErr(err error) error { return errors.New(c.redact(err.Error())) }

// redactAuthorization keeps the scheme ("Bearer", "Basic") so an operator can
// see which kind of credential goes out, and hides the credential.
func redactAuthorization(v string) string {
	if scheme, _, ok := strings.Cut(v, " "); ok && !strings.ContainsAny(scheme, "=:") {
		return scheme + " <redacted>"
	}
	return "<redacted>"
}

// Summary is the one-paragraph description `postern check` prints.
func (c *Config) Summary() string {
	var b strings.Builder
	clients := make([]string, len(c.AllowClients))
	for i, p := range c.AllowClients {
		clients[i] = p.String()
	}
	fmt.Fprintf(&b, "%s: OK. postern listens on %s for clients in %s, answers within %s, and verifies providers against %s. ",
		c.Source, c.Listen, strings.Join(clients, ", "), c.RequestTimeout, c.Roots.Report())
	if c.ListenTLS != "" {
		fmt.Fprintf(&b, "It also serves HTTPS on %s (certificate: %s). ", c.ListenTLS, c.TLS)
	}
	if len(c.InterceptHosts) > 0 {
		fmt.Fprintf(&b, "CONNECT to %s is intercepted with postern's own CA, and any other CONNECT is refused. ", strings.Join(c.InterceptHosts, ", "))
	}
	if pol := c.Roots.Policy(); len(pol.Pins) > 0 || !pol.AIA {
		hosts := make([]string, 0, len(pol.Pins))
		for h := range pol.Pins {
			hosts = append(hosts, h)
		}
		slices.Sort(hosts)
		if len(hosts) > 0 {
			fmt.Fprintf(&b, "Provider keys are pinned for %s. ", strings.Join(hosts, ", "))
		}
		if !pol.AIA {
			b.WriteString("Missing intermediates are not fetched (aia = false). ")
		}
	}
	fmt.Fprintf(&b, "%d route(s), first match wins, anything else refused with 403:", len(c.Routes))
	for i, r := range c.Routes {
		host := r.MatchHost
		if host == "" {
			host = "any host"
		}
		if r.MatchPath == "" {
			fmt.Fprintf(&b, " %d) %q serves only as a fallback (up to %d recipients, %d segments)", i+1, r.Name, r.MaxRecipients, r.MaxSegments)
		} else {
			fmt.Fprintf(&b, " %d) %q takes %s requests for %s %s (up to %d recipients, %d segments)", i+1, r.Name, r.Inbound, host, r.MatchPath, r.MaxRecipients, r.MaxSegments)
		}
		if d, ok := r.dialect.(interface{ Describe() string }); ok {
			fmt.Fprintf(&b, " with %s", d.Describe())
		}
		if r.Country != "" {
			fmt.Fprintf(&b, ", national numbers read in %s", r.Country)
		}
		if r.provider == nil {
			b.WriteString(" and sends nothing (sandbox)")
		} else {
			token := "the token from " + r.TokenSource
			if r.TokenSource == "" {
				token = "no token"
			}
			fmt.Fprintf(&b, " and posts them to %s at %s with %s", r.ProviderName, redactURL(r.Endpoint), token)
			if r.From != "" {
				fmt.Fprintf(&b, ", sender %q", r.From)
			}
			if d, ok := r.provider.(interface{ Describe() string }); ok {
				fmt.Fprintf(&b, " (%s)", d.Describe())
			}
		}
		if r.Fallback != nil {
			fmt.Fprintf(&b, ", failing over to %q", r.Fallback.Name)
		}
		if i < len(c.Routes)-1 {
			b.WriteString(";")
		} else {
			b.WriteString(".")
		}
	}
	return b.String()
}
