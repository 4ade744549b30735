package proxy_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRedactionThroughEveryPath sends a message carrying a marker text and
// every kind of secret through each outcome postern has — delivered, each
// provider failure, each refusal — and then greps every sink (audit buffer,
// audit file, syslog, operational log) and every reply for them.
func TestRedactionThroughEveryPath(t *testing.T) {
	const (
		marker  = "MARKER-guest-pw-Zq81x"
		proxyPW = "PROXY-secret-pw-55"
	)
	var mode atomic.Value
	mode.Store("ok")
	ok := oneAPIReply()
	fp := newFakeProvider(t, func(w http.ResponseWriter, r received) {
		echo := string(r.Body) + " " + r.Header.Get("Authorization") // a provider that quotes everything back
		switch mode.Load() {
		case "ok":
			ok(w, r)
		case "auth":
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"messages":[],"error":{"code":1,"description":"bad key %s"}}`, strings.ReplaceAll(echo, `"`, `'`))
		case "5xx":
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, echo)
		case "garbage":
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprint(w, "not json "+echo)
		case "hangup":
			panic(http.ErrAbortHandler)
		}
	})
	rcv := startSyslogUDP(t)
	file := filepath.Join(t.TempDir(), "audit.log")
	cfg := fmt.Sprintf(`
[server]
proxy_user = "ise"
proxy_password = "env:PROXY_PW"
max_url_bytes = 1024
[audit]
file = %q
syslog = "udp://%s"
[trust]
ca_files = [%q]
[limits]
per_number = "2/1h"
allow_countries = ["US", "GB"]
[[route]]
name = "r"
match_host = "api.clickatell.com"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = %q
token = "env:TEST_TOKEN"
legacy_password = "env:LEGACY_PW"
`, file, rcv.addr, fp.CAFile(t), fp.URL("/v1/message"))
	p := startPostern(t, cfg, map[string]string{"TEST_TOKEN": testToken, "PROXY_PW": proxyPW, "LEGACY_PW": legacyPass})
	authed := &url.URL{Scheme: "http", Host: p.Addr, User: url.UserPassword("ise", proxyPW)}
	wrongAuth := &url.URL{Scheme: "http", Host: p.Addr, User: url.UserPassword("ise", proxyPW+"x")}

	var replies strings.Builder
	send := func(name, providerMode, to, text string, via *url.URL, mutate func(q string) string) {
		mode.Store(providerMode)
		q := legacyQuery(to, text)
		if mutate != nil {
			q = mutate(q)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+clickatellIn+"/http/sendmsg?"+q, nil)
		status, _, body := p.Do(t, req, via)
		fmt.Fprintf(&replies, "%s: %d %s", name, status, body)
	}
	us := "12015550123"
	send("delivered", "ok", us, marker, authed, nil)
	send("provider auth error", "auth", us, marker, authed, nil)
	send("provider 5xx", "5xx", "12015550124", marker, authed, nil)
	send("provider garbage", "garbage", "12015550125", marker, authed, nil)
	send("provider hangs up", "hangup", "12015550126", marker, authed, nil)
	send("per_number", "ok", us, marker, authed, nil)
	send("country", "ok", "4915123456789", marker, authed, nil)
	send("premium", "ok", "449098790123", marker, authed, nil)
	send("bad number", "ok", "12ab", marker, authed, nil)
	send("empty text", "ok", us, "", authed, nil)
	send("bad unicode", "ok", us, marker, authed, func(q string) string { return q + "&unicode=1" })
	send("URL too long", "ok", us, marker+strings.Repeat("x", 1100), authed, nil)
	send("legacy auth", "ok", us, marker, authed, func(q string) string { return strings.Replace(q, legacyPass, "wrong", 1) })
	send("proxy auth", "ok", us, marker, wrongAuth, nil)
	send("no proxy auth", "ok", us, marker, &url.URL{Scheme: "http", Host: p.Addr}, nil)
	send("no route", "ok", us, marker, authed, func(q string) string { return q + "&x=" + url.QueryEscape(marker) })
	req, _ := http.NewRequest(http.MethodGet, "http://evil.example/http/sendmsg?"+legacyQuery(us, marker), nil)
	status, _, body := p.Do(t, req, authed)
	fmt.Fprintf(&replies, "other host: %d %s", status, body)

	if n := len(fp.Requests()); n != 5 {
		t.Errorf("provider got %d requests, want 5 (one per provider outcome)", n)
	}
	// Each sink's chain_start line comes on top of the 17 message lines.
	waitFor(t, "17 syslog messages", func() bool { return strings.Count(strings.Join(rcv.messages(), "\n"), `"msg":"message"`) >= 17 })
	waitFor(t, "17 audit file lines", func() bool { b, _ := os.ReadFile(file); return strings.Count(string(b), `"msg":"message"`) >= 17 })
	fileText, _ := os.ReadFile(file)
	secrets := []string{marker, testToken, proxyPW, legacyPass, basic("ise", proxyPW)}
	mustNotContain(t, "replies", replies.String(), secrets...)
	mustNotContain(t, "audit", p.Audit.String(), secrets...)
	mustNotContain(t, "audit file", string(fileText), secrets...)
	mustNotContain(t, "syslog", strings.Join(rcv.messages(), "\n"), secrets...)
	mustNotContain(t, "log", p.Log.String(), secrets...)
	if t.Failed() {
		t.Logf("replies:\n%s", replies.String())
	}
}
