package proxy_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRequestPath sends arbitrary raw HTTP requests (request line, headers,
// body) through postern's whole handler: goproxy, both ways in and the
// pipeline, to a real fake provider that accepts everything. It must never
// panic, never answer with a secret, and contact the provider only for a
// request it answers 200 (invalid input sends nothing).
func FuzzRequestPath(f *testing.F) {
	for _, seed := range []string{
		"GET http://api.clickatell.com/http/sendmsg?user=u&password=p&api_id=1&to=15551234567&text=hi HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n",
		"GET /http/sendmsg?to=15551234567&text=hi HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n",
		"POST /http/sendmsg HTTP/1.1\r\nHost: api.clickatell.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 24\r\n\r\nto=15551234567&text=hi%0a",
		"GET /http/sendmsg?to=15551234567%0d%0aX:1&text=%00 HTTP/1.1\r\nHost: api.clickatell.com\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n\r\n",
		"CONNECT api.clickatell.com:443 HTTP/1.1\r\nHost: api.clickatell.com:443\r\n\r\n",
		"GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
		"GET /http/sendmsg?to=449098790123&text=x HTTP/1.1\r\nHost: api.clickatell.com\r\n\r\n",
		"GET /http/sendmsg?to=1,2,3&text=%zz HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	fp := newFakeProvider(f, oneAPIReply())
	p := startPostern(f, guardConfig(fp, f, "", "per_number = \"off\"\nper_client = \"off\"\ndaily_max = 0", "legacy_password = \"env:LEGACY_PW\""),
		map[string]string{"TEST_TOKEN": testToken, "LEGACY_PW": legacyPass})
	h := p.srv.Handler()
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // net/http's server would have refused it before postern
		}
		req.RemoteAddr = "127.0.0.1:40000"
		before := len(fp.requests())
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		sent := len(fp.requests()) - before
		if rec.Code != http.StatusOK && sent != 0 {
			t.Fatalf("answered %d but sent %d provider request(s)", rec.Code, sent)
		}
		reply := rec.Body.String()
		for k, vs := range rec.Header() {
			reply += k + ": " + strings.Join(vs, ",")
		}
		for _, s := range []string{testToken, legacyPass} {
			if strings.Contains(reply, s) {
				t.Fatalf("reply contains a secret: %q", reply)
			}
		}
	})
}
