package proxy_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/trust"
)

// TestConnectInterception: ISE, trusting postern's interception CA, sends
// its SMS GET as HTTPS through postern as its proxy; postern terminates the
// tunnel for a listed host and the provider receives the rewritten POST.
// CONNECT to any other host is refused with 403.
func TestConnectInterception(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	dir := t.TempDir()
	ic, created, err := trust.LoadOrCreateInterceptCA(dir, []string{"api.clickatell.com"})
	if err != nil || !created {
		t.Fatalf("LoadOrCreateInterceptCA: %v, created %v", err, created)
	}
	cfg := "[server]\ndata_dir = \"" + dir + "\"\n[intercept]\nhosts = [\"API.clickatell.com\"]\n" +
		routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "")
	p := startPosternWith(t, cfg, env(), proxy.Options{InterceptCA: ic})

	roots := x509.NewCertPool()
	roots.AddCert(ic.CA().Cert())
	proxyURL, _ := url.Parse("http://" + p.Addr)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxyURL),
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}}
	resp, err := client.Get("https://api.clickatell.com/http/sendmsg?" + legacyQuery("15551234567", "through the tunnel"))
	if err != nil {
		t.Fatalf("HTTPS GET through postern: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "ID: ") {
		t.Fatalf("got %d %q, want 200 ID", resp.StatusCode, body)
	}
	if got := resp.TLS.PeerCertificates[0]; got.CheckSignatureFrom(ic.CA().Cert()) != nil || got.VerifyHostname("api.clickatell.com") != nil {
		t.Errorf("tunnel served %s, not a leaf for api.clickatell.com from postern's CA", got.Subject)
	}
	reqs := fp.Requests()
	if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Path != "/v1/message" {
		t.Fatalf("provider received %+v, want one POST /v1/message", reqs)
	}
	texts, tos, err := oneAPIBody(reqs[0].Body)
	if err != nil || len(texts) != 1 || texts[0] != "through the tunnel" || len(tos) != 1 || tos[0] != "15551234567" {
		t.Errorf("provider body: texts %q tos %q err %v", texts, tos, err)
	}
	mustNotContain(t, "provider request", reqs[0].Raw(), legacyPass, legacyUser)
	if !strings.Contains(p.Audit.String(), `"mode":"intercept"`) {
		t.Errorf("audit does not record the intercepted request:\n%s", p.Audit.String())
	}
	if ic.Cached() != 1 {
		t.Errorf("leaf cache holds %d, want 1", ic.Cached())
	}

	// Any other host: 403, nothing tunnelled.
	resp, err = client.Get("https://example.org/http/sendmsg?" + legacyQuery("15551234567", "elsewhere"))
	if err == nil {
		resp.Body.Close()
		t.Fatal("CONNECT to an unlisted host succeeded")
	}
	if !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("unlisted host: %v, want a 403 Forbidden", err)
	}
	if n := len(fp.Requests()); n != 1 {
		t.Errorf("provider received %d requests, want 1", n)
	}
}

// TestInterceptCALeafCacheBounded: the leaf cache never grows past its
// bound, and reuses leaves for hosts it holds.
func TestInterceptCALeafCacheBounded(t *testing.T) {
	ic, _, err := trust.LoadOrCreateInterceptCA(t.TempDir(), []string{"a.example", "b.example", "c.example"})
	if err != nil {
		t.Fatal(err)
	}
	small := trust.NewInterceptCA(ic.CA(), 2, nil)
	a1, _ := small.Leaf("a.example")
	small.Leaf("b.example")
	if a2, _ := small.Leaf("a.example"); a2 != a1 {
		t.Error("cached leaf not reused")
	}
	small.Leaf("c.example") // evicts b, the least recently used
	if small.Cached() != 2 {
		t.Errorf("cache holds %d, want 2", small.Cached())
	}
	if a3, _ := small.Leaf("a.example"); a3 != a1 {
		t.Error("most recently used entry was evicted")
	}
}

// TestConnectInterceptionWithProxyAuth: with proxy_user set, an intercepted
// CONNECT needs Proxy-Authorization; the requests inside the tunnel (which
// clients send without it) are then accepted as that user.
func TestConnectInterceptionWithProxyAuth(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	dir := t.TempDir()
	ic, _, err := trust.LoadOrCreateInterceptCA(dir, []string{"api.clickatell.com"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := "[server]\ndata_dir = \"" + dir + "\"\nproxy_user = \"ise\"\nproxy_password = \"env:PROXY_PW\"\n" +
		"[intercept]\nhosts = [\"api.clickatell.com\"]\n" +
		routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), "")
	e := env()
	e["PROXY_PW"] = "pw-SECRET-77"
	p := startPosternWith(t, cfg, e, proxy.Options{InterceptCA: ic})
	roots := x509.NewCertPool()
	roots.AddCert(ic.CA().Cert())
	get := func(proxyURL string) (int, string, error) {
		u, _ := url.Parse(proxyURL)
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{RootCAs: roots}}}
		resp, err := client.Get("https://api.clickatell.com/http/sendmsg?" + legacyQuery("15551234567", "tunnel with auth"))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if _, _, err := get("http://" + p.Addr); err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
		t.Errorf("CONNECT without credentials: err %v, want 407", err)
	}
	if _, _, err := get("http://ise:wrong@" + p.Addr); err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
		t.Errorf("CONNECT with a wrong password: err %v, want 407", err)
	}
	if n := len(fp.Requests()); n != 0 {
		t.Fatalf("provider received %d requests before authentication, want 0", n)
	}
	status, body, err := get("http://ise:pw-SECRET-77@" + p.Addr)
	if err != nil || status != http.StatusOK || !strings.HasPrefix(body, "ID: ") {
		t.Fatalf("authenticated tunnel: %d %q %v, want 200 ID", status, body, err)
	}
	if !strings.Contains(p.Audit.String(), `"proxy_user":"ise"`) || !strings.Contains(p.Audit.String(), `"mode":"intercept"`) {
		t.Errorf("audit should record the intercepted request with its proxy user:\n%s", p.Audit)
	}
}
