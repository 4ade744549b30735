package deliver

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// Client carries one provider request and reads its reply. Two satisfy
// it: the net/http client over Options.Transport (HTTP/2 when the provider
// offers it, and every request in tests that script a RoundTripper) and
// FastClient (HTTP/1.1 keep-alive, the default for real routes). The retry,
// failover and "nothing was written" decisions above it are the same for
// both.
type Client interface {
	// Exchange sends req within ctx. A nil error means an HTTP reply came
	// back (Reply.BodyErr says whether its body could be read); an error
	// means none did, and Reply.Wrote says whether the request may have
	// reached the provider.
	Exchange(ctx context.Context, req *http.Request) (Reply, error)
}

// Reply is what came back from one provider request.
type Reply struct {
	Status int
	// Header is nil for a 2xx reply to FastClient.ExchangePost (or
	// ExchangeMessage) read on its plain path (plainreply.go): a Poster's
	// replies are read by rewrite and markThrottled, which read only a
	// refusal's headers (a 429's or 503's Retry-After), and making the map
	// was a fifth of the bytes a message allocated. Exchange's replies have
	// all their headers.
	Header http.Header
	Body   []byte
	// BodyErr: the reply's headers arrived but its body could not be read
	// (cut short, over maxProviderReply).
	BodyErr error
	// Info is the TLS facts of the connection the request went over.
	Info Info
	// Wrote: the request was (or may have been) written to the provider,
	// so a failure leaves the outcome unknown. False only when the
	// failure certainly came before any request byte was sent (dial, TLS
	// handshake, a request postern refused to write).
	Wrote bool
	// Took is how long FastClient took, from taking a connection (or
	// dialing one) to the reply read or the failure: the upstream latency
	// postern reports, measured with the readings the exchange makes for
	// its deadlines and its pool anyway. Zero from other clients.
	Took time.Duration
}

// errReplyTooLarge: a provider reply over maxProviderReply.
var errReplyTooLarge = errors.New("reply larger than 1 MiB")

// netClient is the Client over net/http: a pooled http.Transport with
// HTTP/2, or a RoundTripper a test or translate injects.
type netClient struct{ c *http.Client }

func newNetClient(rt http.RoundTripper) *netClient {
	return &netClient{c: &http.Client{
		Transport: rt,
		// A provider redirect is never followed: it would resend the message
		// (and our credentials) somewhere we did not configure.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (n *netClient) Exchange(ctx context.Context, req *http.Request) (Reply, error) {
	// wrote records whether the request may have reached the provider: only
	// before that point is a failure certainly "not sent".
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) }}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))
	resp, err := n.c.Do(req)
	if err != nil {
		return Reply{Wrote: wrote.Load()}, err
	}
	defer resp.Body.Close()
	rep := Reply{Status: resp.StatusCode, Header: resp.Header, Wrote: true}
	if resp.TLS != nil {
		rep.Info = connInfo(resp.TLS)
	}
	rep.Body, rep.BodyErr = io.ReadAll(io.LimitReader(resp.Body, maxProviderReply+1))
	if rep.BodyErr == nil && len(rep.Body) > maxProviderReply {
		rep.BodyErr = errReplyTooLarge
	}
	return rep, nil
}

// connInfo is the audit's view of a TLS connection.
func connInfo(cs *tls.ConnectionState) Info {
	info := Info{TLSVersion: tls.VersionName(cs.Version)}
	if len(cs.PeerCertificates) > 0 {
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		info.LeafSHA256 = hex.EncodeToString(sum[:])
	}
	return info
}
