package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/proxy/proxytest"
)

// connProvider is a TLS fake One API that records, for every request, the
// HTTP version it came in and whether its TLS session was resumed, and counts
// connections: what "upstream connections are reused" means, observed from
// the provider's side.
type connProvider struct {
	*fakeProvider
	mu      sync.Mutex
	protos  []string
	resumed []bool
}

// newConnProvider starts the fake. h2 offers HTTP/2 in ALPN as real
// providers do; closeEach answers "Connection: close", so that every message
// needs a new connection (and, with session resumption, no full handshake).
func newConnProvider(t *testing.T, h2, closeEach bool) *connProvider {
	t.Helper()
	c := &connProvider{}
	reply := oneAPIReply()
	c.fakeProvider = proxytest.NewProviderWith(t, proxytest.ProviderOptions{HTTP2: h2, Observe: func(r *http.Request) {
		c.mu.Lock()
		c.protos = append(c.protos, r.Proto)
		c.resumed = append(c.resumed, r.TLS != nil && r.TLS.DidResume)
		c.mu.Unlock()
	}}, func(w http.ResponseWriter, r received) {
		if closeEach {
			w.Header().Set("Connection", "close")
		}
		reply(w, r)
	})
	return c
}

func (c *connProvider) seen() (protos []string, resumed []bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.protos...), append([]bool(nil), c.resumed...)
}

// sendConcurrently sends n different messages to postern at once, each on
// its own client connection, and returns the first failure.
func sendConcurrently(p *postern, n, first int) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
			defer client.CloseIdleConnections()
			u := fmt.Sprintf("http://%s/http/sendmsg?%s", p.Addr, legacyQuery(fmt.Sprintf("1201555%04d", first+i), fmt.Sprintf("Your password is %d", first+i)))
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.Host = clickatellIn
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("message %d: %d %q", first+i, resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// TestUpstreamSpeaksHTTP2WhenOffered: a route with upstream_http2 = true
// goes through net/http's client, which dials and verifies TLS itself (a
// custom DialTLSContext) and still negotiates HTTP/2 when the provider
// offers it, so concurrent messages share one connection as streams.
func TestUpstreamSpeaksHTTP2WhenOffered(t *testing.T) {
	fp := newConnProvider(t, true, false)
	p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "upstream_http2 = true"), env())
	// A first message opens the connection; the burst then multiplexes on it.
	if err := sendConcurrently(p, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := sendConcurrently(p, 12, 1); err != nil {
		t.Fatal(err)
	}
	protos, _ := fp.seen()
	if len(protos) != 13 {
		t.Fatalf("provider got %d requests, want 13", len(protos))
	}
	for i, proto := range protos {
		if proto != "HTTP/2.0" {
			t.Errorf("request %d came as %s, want HTTP/2.0", i, proto)
		}
	}
	if n := fp.Connections(); n != 1 {
		t.Errorf("13 messages used %d HTTP/2 connections, want 1", n)
	}
}

// TestUpstreamSpeaksHTTP11ByDefault: without upstream_http2, a provider
// that offers HTTP/2 is still spoken to in HTTP/1.1 (postern does not offer
// h2 in ALPN), a burst gets a connection per message in flight, and those
// connections are then kept and reused.
func TestUpstreamSpeaksHTTP11ByDefault(t *testing.T) {
	for _, extra := range []string{"", "upstream_http2 = false"} {
		t.Run(fmt.Sprintf("%q", extra), func(t *testing.T) {
			fp := newConnProvider(t, true, false)
			p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), extra), env())
			if err := sendConcurrently(p, 6, 0); err != nil {
				t.Fatal(err)
			}
			burst := fp.Connections()
			if burst < 1 || burst > 6 {
				t.Fatalf("6 concurrent messages used %d connections, want 1 to 6", burst)
			}
			for i := range 10 {
				if err := sendConcurrently(p, 1, 6+i); err != nil {
					t.Fatal(err)
				}
			}
			protos, _ := fp.seen()
			if len(protos) != 16 {
				t.Fatalf("provider got %d requests, want 16", len(protos))
			}
			for i, proto := range protos {
				if proto != "HTTP/1.1" {
					t.Errorf("request %d came as %s, want HTTP/1.1", i, proto)
				}
			}
			if n := fp.Connections(); n != burst {
				t.Errorf("10 sequential messages after the burst opened %d more connections, want 0 (pooled)", n-burst)
			}
		})
	}
}

// TestUpstreamNoticesIdleConnectionsClosedByTheProvider: when the provider
// drops its idle keep-alive connections (as real ones do after a minute or
// so), the next message goes out on a fresh connection and is delivered —
// not written onto a dead connection, which would leave its outcome unknown.
func TestUpstreamNoticesIdleConnectionsClosedByTheProvider(t *testing.T) {
	for _, extra := range []string{"", "upstream_http2 = true"} {
		t.Run(fmt.Sprintf("%q", extra), func(t *testing.T) {
			fp := newConnProvider(t, false, false)
			p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), extra), env())
			for i := range 3 {
				if err := sendConcurrently(p, 1, 2*i); err != nil {
					t.Fatal(err)
				}
				fp.Srv.CloseClientConnections()
				// On loopback the FIN arrives within the close; net/http's
				// read loop needs a moment to be scheduled and notice it.
				time.Sleep(20 * time.Millisecond)
				if err := sendConcurrently(p, 1, 2*i+1); err != nil {
					t.Fatalf("message after the provider closed the idle connection: %v", err)
				}
			}
			if n := fp.Connections(); n != 4 {
				t.Errorf("provider saw %d connections, want 4 (one, then one after each close)", n)
			}
		})
	}
}

// TestUpstreamResumesTLSSessions: when a provider closes each connection, the
// next one resumes the TLS session instead of a full handshake (and is still
// accepted by postern's own verification).
func TestUpstreamResumesTLSSessions(t *testing.T) {
	fp := newConnProvider(t, false, true)
	p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), ""), env())
	for i := range 4 {
		if err := sendConcurrently(p, 1, i); err != nil {
			t.Fatal(err)
		}
	}
	_, resumed := fp.seen()
	if len(resumed) != 4 || fp.Connections() != 4 {
		t.Fatalf("provider got %d requests on %d connections, want 4 on 4", len(resumed), fp.Connections())
	}
	if resumed[0] {
		t.Error("the first connection cannot have resumed a session")
	}
	for i, r := range resumed[1:] {
		if !r {
			t.Errorf("connection %d did a full handshake, want a resumed session", i+2)
		}
	}
}
