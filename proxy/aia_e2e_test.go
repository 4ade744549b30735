package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/postern/postern/trust"
	"github.com/postern/postern/trust/trusttest"
)

// aiaAudit is the audit line of the one message a test sent.
func aiaAudit(t *testing.T, p *postern) (outcome, reason string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(p.Audit.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d audit lines, want 1:\n%s", len(lines), p.Audit.String())
	}
	var a struct{ Outcome, Reason string }
	if err := json.Unmarshal([]byte(lines[0]), &a); err != nil {
		t.Fatalf("audit line %q: %v", lines[0], err)
	}
	return a.Outcome, a.Reason
}

// TestAIALimitsE2E: a provider's certificate (here on loopback, from a CA
// postern trusts, with its intermediate left out) whose AIA URLs point at
// internal addresses, at many places, or through redirects, gets exactly
// the allowed fetches; what was refused is refused before anything is
// sent, and the audit line names the refused URL and why.
func TestAIALimitsE2E(t *testing.T) {
	root := trusttest.NewCA(t)
	caFile := root.WritePEM(t, t.TempDir())
	aia := trusttest.NewAIAServer(t)
	// Stands in for postern's own admin listener: another port on the
	// same address, which no AIA redirect may reach.
	var adminHits atomic.Int32
	admin := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { adminHits.Add(1) }))
	t.Cleanup(admin.Close)

	inter := root.Intermediate(t)
	aia.Publish("/inter.crt", inter)
	aia.Handle("/to-admin", http.RedirectHandler(admin.URL+"/-/reload", http.StatusFound))
	aia.Handle("/moved", http.RedirectHandler("/inter.crt", http.StatusMovedPermanently))

	// A chain missing three intermediates, each behind a second URL:
	// more than four requests would be needed.
	i3 := root.Intermediate(t)
	i2 := i3.IntermediateAIA(t, aia.URL("/deep/i3.crt"))
	i1 := i2.IntermediateAIA(t, aia.URL("/deep/gone-b"), aia.URL("/deep/i2.crt"))
	aia.Publish("/deep/i1.crt", i1)
	aia.Publish("/deep/i2.crt", i2)
	aia.Publish("/deep/i3.crt", i3)

	// many is n more URLs that would each serve the right intermediate.
	many := func(n int, path string) []string {
		var urls []string
		for i := range n {
			urls = append(urls, aia.URL(fmt.Sprintf("%s?copy=%d", path, i)))
		}
		return urls
	}
	const refused = "ERR: 901, Upstream TLS verification failed: " + trust.ReasonIssuerFetch + "\n"

	for _, tc := range []struct {
		name      string
		issuer    *trusttest.CA
		urls      []string
		delivered bool
		requests  []string // paths the AIA server got, in order
		audit     []string // in the audit reason
	}{
		{
			name:   "21 internal and loopback URLs: two tried, both refused, nothing fetched",
			issuer: inter,
			urls: append([]string{"http://10.0.0.1/ca.crt", "http://169.254.169.254/latest/meta-data/"},
				many(19, "/inter.crt")...),
			audit: []string{
				"AIA URL http://10.0.0.1/ca.crt: refused: 10.0.0.1 is a private address, and the provider's address 127.0.0.1 is loopback",
				"AIA URL http://169.254.169.254/latest/meta-data/: refused: 169.254.169.254 is a link-local address",
				"19 more AIA URL(s) not tried: at most 2 per certificate",
			},
		},
		{
			name:   "CGNAT, IPv6 private, multicast and unspecified URLs",
			issuer: inter,
			urls:   []string{"http://100.64.0.1/ca.crt", "http://[fd00::1]/ca.crt", "http://224.0.0.1/ca.crt", "http://0.0.0.0/ca.crt"},
			audit: []string{
				"AIA URL http://100.64.0.1/ca.crt: refused: 100.64.0.1 is a carrier-grade NAT address",
				"AIA URL http://[fd00::1]/ca.crt: refused: fd00::1 is a private address",
				"2 more AIA URL(s) not tried",
			},
		},
		{
			name:      "a refused URL, then the real one: delivered",
			issuer:    inter,
			urls:      append([]string{"http://192.168.1.1/ca.crt", aia.URL("/inter.crt")}, many(10, "/inter.crt")...),
			delivered: true,
			requests:  []string{"/inter.crt"},
		},
		{
			name:     "https and ftp URLs",
			issuer:   inter,
			urls:     []string{"https://" + aia.Addr() + "/inter.crt", "ftp://" + aia.Addr() + "/inter.crt", aia.URL("/inter.crt")},
			audit:    []string{`refused: scheme "https" is not http`, `refused: scheme "ftp" is not http`, "1 more AIA URL(s) not tried"},
			requests: nil,
		},
		{
			name:     "redirect to another port on the same address",
			issuer:   inter,
			urls:     []string{aia.URL("/to-admin")},
			requests: []string{"/to-admin"},
			audit:    []string{"AIA URL " + aia.URL("/to-admin") + ": refused: redirected to another host or scheme (" + admin.URL + "/-/reload): not followed"},
		},
		{
			name:      "one redirect on the same host: followed",
			issuer:    inter,
			urls:      []string{aia.URL("/moved")},
			delivered: true,
			requests:  []string{"/moved", "/inter.crt"},
		},
		{
			name:     "a chain needing more than four requests: exactly four",
			issuer:   i1,
			urls:     append([]string{aia.URL("/deep/gone-a"), aia.URL("/deep/i1.crt")}, many(18, "/deep/i1.crt")...),
			requests: []string{"/deep/gone-a", "/deep/i1.crt", "/deep/gone-b", "/deep/i2.crt"},
			audit:    []string{"AIA URL " + aia.URL("/deep/i3.crt") + ": refused: not fetched: at most 4 AIA requests per handshake"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(aia.Requests())
			leaf := tc.issuer.Leaf(t, trusttest.LeafOptions{LeafOnly: true, IssuerURLs: tc.urls})
			fp := newFakeProviderTLS(t, leaf, oneAPIReply())
			p := startPostern(t, trustConfig(caFile, fp.URL("/v1/message"), ""), env())
			status, body := p.Get(t, "proxy", clickatellIn, "/http/sendmsg?"+legacyQuery("15551234567", "aia limits"))
			sent := len(fp.Requests())
			outcome, reason := aiaAudit(t, p)
			if tc.delivered {
				if status != http.StatusOK || !strings.HasPrefix(body, "ID: ") || sent != 1 || outcome != "delivered" {
					t.Errorf("got %d %q, %d sent, outcome %q; want 200 ID, 1 sent, delivered", status, body, sent, outcome)
				}
			} else if status != http.StatusBadGateway || body != refused || sent != 0 || outcome != "refused" {
				t.Errorf("got %d %q, %d sent, outcome %q; want 502 %q, nothing sent, refused", status, body, sent, outcome, refused)
			}
			if got := aia.Requests()[before:]; !slices.Equal(got, tc.requests) {
				t.Errorf("AIA server got %v, want %v", got, tc.requests)
			}
			for _, w := range tc.audit {
				if !strings.Contains(reason, w) {
					t.Errorf("audit reason lacks %q:\n%s", w, reason)
				}
			}
			if n := adminHits.Load(); n != 0 {
				t.Errorf("the admin stand-in got %d requests", n)
			}
		})
	}
}
