package proxy_test

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestAnswersCarryTheSameHeadersEveryWayIn: whichever way ISE's GET arrives
// (postern as its HTTP proxy, straight to postern, or to the provider's name
// pointed at postern), the answer — delivered or refused — has the legacy
// body, its content type, and the headers that keep message ids out of
// caches and browsers' content sniffing.
func TestAnswersCarryTheSameHeadersEveryWayIn(t *testing.T) {
	fp := newFakeProvider(t, oneAPIReply())
	p := startPostern(t, routeConfig(fp.CAFile(t), "r", "clickatell-one", fp.URL("/v1/message"), ""), env())
	proxyURL, _ := url.Parse("http://" + p.Addr)
	for _, tc := range []struct {
		name, mode, path string
		status           int
		contentType      string
	}{
		{"delivered via proxy", "proxy", "/http/sendmsg?" + legacyQuery("15551234567", "pw 1"), http.StatusOK, "text/plain; charset=utf-8"},
		{"delivered via dns", "dns", "/http/sendmsg?" + legacyQuery("15551234567", "pw 2"), http.StatusOK, "text/plain; charset=utf-8"},
		{"no route via proxy", "proxy", "/elsewhere", http.StatusForbidden, "text/plain; charset=utf-8"},
		{"no route direct", "direct", "/elsewhere", http.StatusForbidden, "text/plain; charset=utf-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
			u := "http://" + p.Addr + tc.path
			if tc.mode == "proxy" {
				client.Transport = &http.Transport{Proxy: http.ProxyURL(proxyURL)}
				u = "http://" + clickatellIn + tc.path
			}
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			if tc.mode == "dns" {
				req.Host = clickatellIn
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || len(body) == 0 {
				t.Fatalf("got %d %q, want %d with a body", resp.StatusCode, body, tc.status)
			}
			for k, want := range map[string]string{
				"Content-Type":           tc.contentType,
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
			} {
				if got := resp.Header.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("%s: got %q, want exactly %q", k, got, want)
				}
			}
		})
	}
}
