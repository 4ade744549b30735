package main

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/internal/testtool"
)

// TestNginxReferenceDoesTheJob: the nginx+Lua reference the benchmark
// compares postern with does the job it is credited with — for hostile
// texts too, the provider receives the One API JSON that carries the
// legacy GET's number and text exactly, with the token, over a verified
// keep-alive TLS connection, and the answer is ISE's "ID: <apiMessageId>" —
// and it refuses a request without a text.
func TestNginxReferenceDoesTheJob(t *testing.T) {
	if !nginxAvailable() {
		if testtool.InCI() {
			t.Fatal("nginx with its Lua module is not installed, and CI (CI=true) requires this check: .ci/run installs them")
		}
		t.Skip("nginx with its Lua module is not installed (apt-get install nginx libnginx-mod-http-lua)")
	}
	type received struct {
		auth, contentType string
		body              []byte
	}
	var (
		mu    sync.Mutex
		got   []received
		conns atomic.Int32
	)
	prov := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Header.Get("Authorization"), r.Header.Get("Content-Type"), b})
		n := len(got)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"messages":[{"apiMessageId":"id-`+strings.Repeat("x", n)+`","accepted":true,"to":"12015550000","error":null}],"error":null}`)
	}))
	prov.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	prov.StartTLS()
	defer prov.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "provider-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: prov.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ng, err := startNginx(dir, prov.URL, ca)
	if err != nil {
		t.Fatal(err)
	}
	defer ng.stop()

	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxConnsPerHost: 1}}
	texts := []string{
		"Your password is 1234",
		`quotes " and ' and back\slash \" \\`,
		"& + % # = ? ; / %41 %%",
		"line one\nline two\r\ttab \x01\x1f",
		"emoji 🔑👍 Arabic كلمة المرور 123 and CJK 密码",
		strings.Repeat("long text ", 300),
	}
	for i, text := range texts {
		q := url.Values{"user": {"ise"}, "password": {"legacy"}, "api_id": {"1"}, "to": {"12015550100"}, "text": {text}}
		resp, err := client.Get("http://" + ng.addr + "/http/sendmsg?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "ID: id-" + strings.Repeat("x", i+1); resp.StatusCode != http.StatusOK || string(answer) != want {
			t.Fatalf("text %d: answer %d %q, want 200 %q", i, resp.StatusCode, answer, want)
		}
		mu.Lock()
		r := got[len(got)-1]
		mu.Unlock()
		var sent struct {
			Messages []struct{ Channel, To, Content string }
		}
		if err := json.Unmarshal(r.body, &sent); err != nil {
			t.Fatalf("text %d: the provider got invalid JSON %q: %v", i, r.body, err)
		}
		if len(sent.Messages) != 1 || sent.Messages[0].To != "12015550100" || sent.Messages[0].Content != text || sent.Messages[0].Channel != "sms" {
			t.Errorf("text %d: the provider got %+v, want the number and text %q", i, sent.Messages, text)
		}
		if r.auth != "tok-bench" || r.contentType != "application/json" {
			t.Errorf("text %d: Authorization %q, Content-Type %q", i, r.auth, r.contentType)
		}
	}
	if n := conns.Load(); int(n) >= len(texts) {
		t.Errorf("%d provider connections for %d messages: the upstream pool is not kept alive", n, len(texts))
	}

	resp, err := client.Get("http://" + ng.addr + "/http/sendmsg?to=12015550100")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("without a text: %d, want 400", resp.StatusCode)
	}
}

// TestNginxReferenceReportsAFailedStart: an nginx that cannot start (here,
// the provider's CA file is missing) is reported with nginx's own words as
// soon as it exits, not after the wait for it to listen.
func TestNginxReferenceReportsAFailedStart(t *testing.T) {
	if !nginxAvailable() {
		if testtool.InCI() {
			t.Fatal("nginx with its Lua module is not installed, and CI (CI=true) requires this check: .ci/run installs them")
		}
		t.Skip("nginx with its Lua module is not installed (apt-get install nginx libnginx-mod-http-lua)")
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-ca.pem")
	start := time.Now()
	ng, err := startNginx(dir, "https://127.0.0.1:9", missing)
	if err == nil {
		ng.stop()
		t.Fatal("nginx started without its CA file")
	}
	if !strings.Contains(err.Error(), "no-such-ca.pem") {
		t.Errorf("error %q does not say what nginx could not load", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("reported after %v, not when nginx exited", took)
	}
}
