package deliver

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/trust"
	"github.com/postern/postern/trust/trusttest"
)

// provider starts a TLS server offering h2 and HTTP/1.1 that answers
// every POST with a small JSON body, and returns its URL and roots that
// trust it.
func provider(tb testing.TB) (string, *trust.Roots) {
	tb.Helper()
	ca := trusttest.NewCA(tb)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Proto", r.Proto)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"messages":[{"apiMessageId":"abc","accepted":true}]}`)
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Leaf(tb, trusttest.LeafOptions{})}, NextProtos: []string{"h2", "http/1.1"}}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	roots, err := trust.LoadRoots([]string{ca.WritePEM(tb, tb.TempDir())})
	if err != nil {
		tb.Fatal(err)
	}
	return srv.URL, roots
}

// clients are the two upstream clients as postern builds them.
func clients(roots *trust.Roots) map[string]Client {
	return map[string]Client{
		"fast":     NewFastClient(trust.NewDialer(roots), nil),
		"net/http": newNetClient(trust.NewTransport(roots)),
	}
}

func exchange(tb testing.TB, c Client, url string) Reply {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/message?x=1", bytes.NewReader([]byte(`{"messages":[]}`)))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "postern/test")
	rep, err := c.Exchange(ctx, req)
	if err != nil {
		tb.Fatalf("exchange: %v", err)
	}
	return rep
}

// TestClientsAgree: both clients return the same status, headers, body and
// TLS facts for the same exchange; the fast client speaks HTTP/1.1 to a
// provider offering h2, net/http speaks h2.
func TestClientsAgree(t *testing.T) {
	url, roots := provider(t)
	protos := map[string]string{"fast": "HTTP/1.1", "net/http": "HTTP/2.0"}
	for name, c := range clients(roots) {
		t.Run(name, func(t *testing.T) {
			rep := exchange(t, c, url)
			if rep.Status != http.StatusAccepted || rep.BodyErr != nil || !strings.Contains(string(rep.Body), `"apiMessageId":"abc"`) {
				t.Errorf("reply %d %q %v", rep.Status, rep.Body, rep.BodyErr)
			}
			if got := rep.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if got := rep.Header.Get("X-Proto"); got != protos[name] {
				t.Errorf("provider saw %s, want %s", got, protos[name])
			}
			if rep.Info.TLSVersion != "TLS 1.3" || len(rep.Info.LeafSHA256) != 64 || !rep.Wrote {
				t.Errorf("info %+v wrote %v", rep.Info, rep.Wrote)
			}
		})
	}
}

// TestFastClientRefusesHeaderInjection: a header value with a line break
// is refused before anything is written (net/http refuses it too).
func TestFastClientRefusesHeaderInjection(t *testing.T) {
	url, roots := provider(t)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/message", strings.NewReader("{}"))
	req.Header.Set("X-Ref", "a\r\nX-Injected: 1")
	rep, err := NewFastClient(trust.NewDialer(roots), nil).Exchange(context.Background(), req)
	if err == nil || rep.Wrote {
		t.Fatalf("exchange: wrote %v, err %v; want refused, nothing written", rep.Wrote, err)
	}
}

// BenchmarkClient: one provider exchange over a kept-alive loopback TLS
// connection, per client. allocs/op is stable on a busy machine, ns/op is
// not (docs/benchmarks.md).
func BenchmarkClient(b *testing.B) {
	url, roots := provider(b)
	for name, c := range clients(roots) {
		b.Run(strings.ReplaceAll(name, "/", ""), func(b *testing.B) {
			exchange(b, c, url) // dial outside the measurement
			b.ReportAllocs()
			for b.Loop() {
				exchange(b, c, url)
			}
		})
	}
}
