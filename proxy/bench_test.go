package proxy_test

import (
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/proxytest"
)

// BenchmarkPipeline is the whole in-process pipeline for one message: an
// ISE-style legacy GET over a keep-alive loopback connection to a real
// postern listener, the provider request over pooled TLS to a fake One API,
// its reply, the legacy answer and the audit line (to io.Discard). Every
// iteration is a different message.
//
//	go test -run='^$' -bench=Pipeline -benchmem ./proxy/
func BenchmarkPipeline(b *testing.B) {
	providerURL, ca := benchProvider(b)
	cfg, err := config.Load("bench.toml", []byte(fmt.Sprintf(`
[trust]
ca_files = [%q]
# One client sending many messages is far beyond any sane guardrail:
# measure the pipeline, not the limits.
[server]
max_concurrent_upstream = 1000
[limits]
per_number = "off"
per_client = "off"
daily_max = 0
[[route]]
name = "bench"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "%s/v1/message"
token = "tok-bench"
`, ca, providerURL)), config.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	// The audit logger postern runs with (its own line writer), to nowhere.
	discard := slog.New(slog.NewJSONHandler(io.Discard, nil))
	addr, stop := proxytest.Serve(b, proxy.New(cfg, proxy.Options{Log: discard, Audit: audit.NewLogger(io.Discard)}))
	defer stop()
	base := "http://" + addr + "/http/sendmsg?user=ise&password=legacy&api_id=1&to=15551234567&text=Your+password+is+"

	send := func(client *http.Client, i int64) { benchGet(b, client, base+strconv.FormatInt(i, 10)) }
	b.Run("1conn", func(b *testing.B) {
		client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxConnsPerHost: 1}}
		b.ReportAllocs()
		var i int64
		for b.Loop() {
			i++
			send(client, i)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxConnsPerHost: 1}}
			for pb.Next() {
				send(client, n.Add(1))
			}
		})
	})
}

// benchProvider starts a fake One API for the pipeline benchmarks (HTTP/2
// offered, every reply a new id) and writes its CA for [trust] ca_files.
func benchProvider(b *testing.B) (url, caFile string) {
	b.Helper()
	var ids atomic.Int64
	provider := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, `{"messages":[{"apiMessageId":"b%d","accepted":true,"to":"15551234567","error":null}],"error":null}`, ids.Add(1))
	}))
	provider.EnableHTTP2 = true
	provider.StartTLS()
	b.Cleanup(provider.Close)
	ca := filepath.Join(b.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: provider.Certificate().Raw}), 0o600); err != nil {
		b.Fatal(err)
	}
	return provider.URL, ca
}

// benchGet sends one legacy GET and reads its reply, which must be 200.
func benchGet(b *testing.B, client *http.Client, url string) {
	resp, err := client.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
}
