package proxy_test

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/postern/postern/trust"
	"github.com/postern/postern/trust/trusttest"
)

// trustConfig is one clickatell-one route to endpoint with a [trust] table
// holding caFile and the extra trust lines.
func trustConfig(caFile, endpoint, trustExtra string) string {
	return fmt.Sprintf(`
[trust]
ca_files = [%q]
%s

[[route]]
name = "r"
match_host = "api.clickatell.com"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = %q
token = "env:TEST_TOKEN"
`, caFile, trustExtra, endpoint)
}

// serveRaw starts a loopback HTTP server answering every request with h.
func serveRaw(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/issuer.crt"
}

// TestAIAFetchesMissingIntermediate: a provider that serves its leaf
// without the intermediate is verified and delivered to, because postern
// fetches the intermediate from the leaf's AIA URL; with aia = false it is
// refused with 502 and nothing is sent. Through either upstream client.
func TestAIAFetchesMissingIntermediate(t *testing.T) {
	for _, c := range upstreamClients {
		t.Run(c.name, func(t *testing.T) { testAIAFetchesMissingIntermediate(t, c.routeKey) })
	}
}

func testAIAFetchesMissingIntermediate(t *testing.T, routeKey string) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	leaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{trusttest.ServeIssuer(t, inter)}})
	fp := newFakeProviderTLS(t, leaf, oneAPIReply())
	caFile := root.WritePEM(t, t.TempDir())

	p := startPostern(t, trustConfig(caFile, fp.URL("/v1/message"), "")+routeKey, env())
	status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "aia works"))
	if status != http.StatusOK || !strings.HasPrefix(body, "ID: ") {
		t.Fatalf("AIA on: got %d %q, want 200 ID", status, body)
	}
	if n := len(fp.Requests()); n != 1 {
		t.Fatalf("provider got %d requests, want 1", n)
	}

	off := startPostern(t, trustConfig(caFile, fp.URL("/v1/message"), "aia = false")+routeKey, env())
	status, body = off.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "aia off"))
	if want := "ERR: 901, Upstream TLS verification failed: certificate not trusted\n"; status != http.StatusBadGateway || body != want {
		t.Errorf("AIA off: got %d %q, want 502 %q", status, body, want)
	}
	if n := len(fp.Requests()); n != 1 {
		t.Errorf("provider got %d requests, want still 1", n)
	}
}

// TestAIABadIssuerURLs: an AIA URL that hangs, serves something huge or
// serves garbage ends in a clear 502 within aia_timeout, nothing sent.
func TestAIABadIssuerURLs(t *testing.T) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	caFile := root.WritePEM(t, t.TempDir())
	huge := make([]byte, trust.MaxAIABytes+10)
	rand.Read(huge)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"hangs", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}},
		{"huge", func(w http.ResponseWriter, _ *http.Request) { w.Write(huge) }},
		{"garbage", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>not a certificate</html>")) }},
		{"not found", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }},
		{"a leaf, not the issuer", func(w http.ResponseWriter, _ *http.Request) {
			w.Write(root.Leaf(t, trusttest.LeafOptions{}).Leaf.Raw)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaf := inter.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: []string{serveRaw(t, tc.h)}})
			fp := newFakeProviderTLS(t, leaf, oneAPIReply())
			p := startPostern(t, trustConfig(caFile, fp.URL("/v1/message"), `aia_timeout = "300ms"`), env())
			status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "bad aia"))
			want := "ERR: 901, Upstream TLS verification failed: " + trust.ReasonIssuerFetch + "\n"
			if status != http.StatusBadGateway || body != want {
				t.Errorf("got %d %q, want 502 %q", status, body, want)
			}
			if n := len(fp.Requests()); n != 0 {
				t.Errorf("provider got %d requests, want 0", n)
			}
			if !strings.Contains(p.Audit.String(), "AIA") {
				t.Errorf("audit line does not say the AIA fetch failed:\n%s", p.Audit.String())
			}
		})
	}
}

// upstreamClients are the two ways a route reaches its provider: the
// default HTTP/1.1 pool and net/http's client (upstream_http2 = true). Both
// verify alike; the trust tests run through each. A line appended to
// trustConfig's output lands in its route.
var upstreamClients = []struct{ name, routeKey string }{
	{"http1 pool", ""},
	{"upstream_http2", "upstream_http2 = true\n"},
}

// TestPins: a chain that verifies is delivered to only if it carries a
// pinned key; a backup pin alone is enough; a wrong pin is a 502. Through
// either upstream client.
func TestPins(t *testing.T) {
	for _, c := range upstreamClients {
		t.Run(c.name, func(t *testing.T) { testPins(t, c.routeKey) })
	}
}

func testPins(t *testing.T, routeKey string) {
	root := trusttest.NewCA(t)
	inter := root.Intermediate(t)
	leaf := inter.Leaf(t, trusttest.LeafOptions{})
	fp := newFakeProviderTLS(t, leaf, oneAPIReply())
	caFile := root.WritePEM(t, t.TempDir())
	other := trust.PinOf(trusttest.NewCA(t).Cert()).String()
	pins := func(list ...string) string {
		return fmt.Sprintf("[trust.pins]\n%q = [\"%s\"]", "127.0.0.1", strings.Join(list, `", "`))
	}
	for _, tc := range []struct {
		name, pins string
		ok         bool
	}{
		{"leaf key pinned", pins(trust.PinOf(leaf.Leaf).String()), true},
		{"intermediate pinned", pins(trust.PinOf(inter.Cert()).String()), true},
		{"backup pin matches", pins(other, trust.PinOf(leaf.Leaf).String()), true},
		{"no pin matches", pins(other), false},
		{"pins for another host only", fmt.Sprintf("[trust.pins]\n%q = [%q]", "api.example.net", other), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(fp.Requests())
			p := startPostern(t, trustConfig(caFile, fp.URL("/v1/message"), tc.pins)+routeKey, env())
			status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "pinned"))
			sent := len(fp.Requests()) - before
			if tc.ok {
				if status != http.StatusOK || sent != 1 {
					t.Errorf("got %d %q, %d sent; want 200 and 1 sent", status, body, sent)
				}
				return
			}
			want := "ERR: 901, Upstream TLS verification failed: " + trust.ReasonPin + "\n"
			if status != http.StatusBadGateway || body != want || sent != 0 {
				t.Errorf("got %d %q, %d sent; want 502 %q and nothing sent", status, body, sent, want)
			}
		})
	}
}

// TestUpstreamExpiryTracked: after a delivery the provider's leaf expiry is
// readable for metrics, and a leaf expiring within 14 days is warned about.
func TestUpstreamExpiryTracked(t *testing.T) {
	ca := trusttest.NewCA(t)
	leaf := ca.Leaf(t, trusttest.LeafOptions{}) // expires in 24h
	fp := newFakeProviderTLS(t, leaf, oneAPIReply())
	p := startPostern(t, trustConfig(ca.WritePEM(t, t.TempDir()), fp.URL("/v1/message"), ""), env())
	if status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "expiry")); status != http.StatusOK {
		t.Fatalf("got %d %q", status, body)
	}
	leaves := p.Srv.UpstreamExpiry().Leaves()
	if len(leaves) != 1 || leaves[0].Host != "127.0.0.1" || !leaves[0].NotAfter.Equal(leaf.Leaf.NotAfter) {
		t.Fatalf("Leaves() = %+v, want 127.0.0.1 expiring %v", leaves, leaf.Leaf.NotAfter)
	}
	if left, ok := p.Srv.UpstreamExpiry().Remaining("127.0.0.1"); !ok || left <= 0 || left > 24*60*60*1e9 {
		t.Errorf("Remaining = %v, %v", left, ok)
	}
	if !strings.Contains(p.Log.String(), "upstream certificate expires soon") {
		t.Errorf("no expiry warning in the log:\n%s", p.Log.String())
	}
}
