package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/deliver"
)

// Translate shows what postern would send for a legacy request URL without
// sending anything: the matching route, then each provider request (method,
// URL, headers, body) exactly as the server would send it, with the token
// and the Authorization header's credential shown as <redacted>. It runs
// the server's own route, parse, guard and deliver steps, with a transport
// that records each request and sends nothing, so it refuses what the
// server refuses (error: the status and legacy reply).
//
// cfg must be loaded with config.LoadOptions.MaskTokens: the token is then
// never in the requests at all, and where it would stand is known exactly.
// An absolute URL is matched as a proxy request; a bare path as a direct
// request. userAgent is what the server would send (deliver.UserAgent).
func Translate(ctx context.Context, cfg *config.Config, rawURL, userAgent string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", errors.New("not a valid URL")
	}
	rec := &dryRun{}
	s := New(cfg, Options{UserAgent: userAgent, dryRun: rec})
	r := (&http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}).WithContext(ctx)
	p := &pipeline{s: s, rt: s.rt.Load(), r: r, start: time.Now(), a: &audit.Record{Method: http.MethodGet}}
	if ref := p.route(); ref != nil {
		return "", fmt.Errorf("no route matches host %q path %q: postern would answer %d", config.HostOnly(u.Host), u.Path, ref.status)
	}
	route := p.rte
	msg, ref := p.parse()
	if ref == nil {
		ref = p.guard(msg)
	}
	if ref != nil {
		resp := p.refuse(ref)
		body, _ := io.ReadAll(resp.Body)
		return "", fmt.Errorf("route %q: postern would answer %d %q", route.Name, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	d, ref := p.deliver(msg)
	if ref != nil {
		return "", fmt.Errorf("route %q: %s", route.Name, ref.err.Description)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# route %q: %s -> %s\n", route.Name, route.Inbound, route.ProviderName)
	if route.Provider == nil {
		fmt.Fprintf(&b, "# sandbox: nothing would be sent; ISE would get 200 \"ID: sandbox-<n>\" for %d recipient(s)\n", len(msg.To))
		return b.String(), nil
	}
	reqs := rec.taken()
	if len(reqs) == 0 {
		// The provider could not build a request for this message.
		_, _, reason := deliver.Summarize(d.Result)
		return "", fmt.Errorf("route %q: %s", route.Name, maskToken(reason))
	}
	for _, req := range reqs {
		req.write(&b)
	}
	return b.String(), nil
}

// dryRun is the transport of a translation: it keeps each request and
// answers none.
type dryRun struct {
	mu   sync.Mutex
	reqs []dryRequest
}

// dryRequest is one provider request as it would leave postern.
type dryRequest struct {
	method, url string
	header      http.Header
	body        []byte
}

// errDryRun is the answer to every request of a translation.
var errDryRun = errors.New("postern translate sends nothing")

func (d *dryRun) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reqs = append(d.reqs, dryRequest{method: r.Method, url: r.URL.String(), header: r.Header.Clone(), body: body})
	return nil, errDryRun
}

func (d *dryRun) taken() []dryRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.reqs)
}

// write renders the request: method and URL, headers sorted, a blank line,
// the body. Credentials are hidden where they stand: the Authorization
// header's credential (which may encode the token, as Basic does) and the
// token's stand-in wherever a template placed it.
func (q dryRequest) write(b *strings.Builder) {
	fmt.Fprintf(b, "%s %s\n", q.method, maskToken(q.url))
	keys := make([]string, 0, len(q.header))
	for k := range q.header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range q.header[k] {
			if k == "Authorization" || k == "Proxy-Authorization" {
				v = redactAuthorization(v)
			}
			fmt.Fprintf(b, "%s: %s\n", k, maskToken(v))
		}
	}
	b.WriteString("\n")
	if len(q.body) > 0 {
		b.WriteString(maskToken(string(bytes.TrimRight(q.body, "\n"))))
		b.WriteString("\n")
	}
}

// maskToken shows the token's stand-in (config.LoadOptions.MaskTokens) as
// <redacted>.
func maskToken(s string) string {
	return strings.ReplaceAll(s, config.TokenStandIn, "<redacted>")
}

// redactAuthorization keeps the scheme ("Bearer", "Basic") so an operator can
// see which kind of credential goes out, and hides the credential.
func redactAuthorization(v string) string {
	if scheme, _, ok := strings.Cut(v, " "); ok && !strings.ContainsAny(scheme, "=:") {
		return scheme + " <redacted>"
	}
	return "<redacted>"
}
