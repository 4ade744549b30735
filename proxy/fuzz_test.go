package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// fuzzRefuseMarker in a message text makes the fuzz provider refuse the
// message after reading it (accepted:false), so the fuzz also reaches the
// one way a provider request legitimately ends in something other than 200.
const fuzzRefuseMarker = "provider-says-no"

// fuzzTarget is postern's whole handler (goproxy, both ways in, the
// pipeline) in front of a real fake provider that accepts every message
// except those carrying fuzzRefuseMarker. The route needs ISE's legacy
// password, as a real deployment's does.
type fuzzTarget struct {
	h       http.Handler
	fp      *fakeProvider
	refused atomic.Int64 // requests the fake provider refused
}

func newFuzzTarget(t testing.TB) *fuzzTarget {
	ft := &fuzzTarget{}
	accept := oneAPIReply()
	ft.fp = newFakeProvider(t, func(w http.ResponseWriter, r received) {
		if !bytes.Contains(r.Body, []byte(fuzzRefuseMarker)) {
			accept(w, r)
			return
		}
		ft.refused.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"messages":[{"apiMessageId":null,"accepted":false,"to":"15551234567","error":{"code":25,"description":"Invalid recipient"}}],"error":null}`)
	})
	p := startPostern(t, guardConfig(ft.fp, t, "", "per_number = \"off\"\nper_client = \"off\"\ndaily_max = 0", "legacy_password = \"env:LEGACY_PW\""),
		map[string]string{"TEST_TOKEN": testToken, "LEGACY_PW": legacyPass})
	ft.h = p.Srv.Handler()
	return ft
}

// fuzzResult is what one raw request came to: ISE's reply and how many
// requests the provider read (and refused) for it.
type fuzzResult struct {
	status        int
	reply         string // body and headers, for the secret check
	body          string
	sent, refused int
}

// serve sends one raw request through the handler; ok is false when raw is
// not an HTTP request net/http's server would have passed on. Calls must
// not overlap (the provider counts are deltas).
func (ft *fuzzTarget) serve(raw []byte) (res fuzzResult, ok bool) {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return res, false
	}
	req.RemoteAddr = "127.0.0.1:40000"
	sentBefore, refusedBefore := len(ft.fp.Requests()), ft.refused.Load()
	rec := httptest.NewRecorder()
	ft.h.ServeHTTP(rec, req)
	res.status, res.body = rec.Code, rec.Body.String()
	res.sent, res.refused = len(ft.fp.Requests())-sentBefore, int(ft.refused.Load()-refusedBefore)
	res.reply = res.body
	for k, vs := range rec.Header() {
		res.reply += "\n" + k + ": " + strings.Join(vs, ",")
	}
	return res, true
}

// check holds for every request, whatever it is:
//   - no 200 without a provider request, and a 200 carries an id;
//   - a refusal before send (any 4xx, 500 build error, 503 busy) never
//     contacts the provider: only 502 (the provider's error reply, or no
//     usable reply) and 504 (no answer in time) may follow a request;
//   - this provider answers every request and refuses only messages with
//     fuzzRefuseMarker, so a request that reached it ends in 200 unless it
//     refused: anything else means postern sent something malformed or
//     misread an acceptance;
//   - no secret is in the reply.
func (r fuzzResult) check(t *testing.T) {
	t.Helper()
	switch {
	case r.status == http.StatusOK && r.sent == 0:
		t.Fatalf("answered 200 %q without a provider request", r.body)
	case r.status == http.StatusOK && !strings.HasPrefix(r.body, "ID: "):
		t.Fatalf("answered 200 without an id: %q", r.body)
	case r.sent > 0 && r.status != http.StatusOK && r.status != http.StatusBadGateway && r.status != http.StatusGatewayTimeout:
		t.Fatalf("answered %d %q, a refusal before send, but sent %d provider request(s)", r.status, r.body, r.sent)
	case r.sent > 0 && r.status != http.StatusOK && r.refused == 0:
		t.Fatalf("answered %d %q after %d provider request(s) the provider accepted", r.status, r.body, r.sent)
	}
	for _, s := range []string{testToken, legacyPass} {
		if strings.Contains(r.reply, s) {
			t.Fatalf("reply contains a secret: %q", r.reply)
		}
	}
}

// FuzzRequestPath sends arbitrary raw HTTP requests (request line, headers,
// body) through postern's whole handler to a real fake provider and checks
// fuzzResult.check. The seeds below stop early (no or wrong credentials,
// CONNECT, no route); those in testdata/fuzz/FuzzRequestPath carry the
// legacy password, and TestFuzzRequestPathSeeds makes sure they go where
// their names say: to the provider, or past authentication to a later
// refusal.
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
	ft := newFuzzTarget(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		if res, ok := ft.serve(raw); ok {
			res.check(t)
		}
	})
}

// fuzzSeeds is what each seed file in testdata/fuzz/FuzzRequestPath must
// come to. "sent_" seeds reach the provider and are answered 200;
// "provider_refuses_" reach it and it says no; "refused_" pass
// authentication (or, for no_route, never need it) and are refused before
// anything is sent. Without this, a seed that stops at 403 ERR: 001 (say,
// after the test password changes) would silently fuzz nothing but the
// password check.
var fuzzSeeds = map[string]struct {
	status int
	body   string // prefix
	sent   int
}{
	"sent_get_absolute_form":         {200, "ID: one", 1},
	"sent_get_origin_form":           {200, "ID: one", 1},
	"sent_get_all_legacy_options":    {200, "ID: one", 1},
	"sent_post_form":                 {200, "ID: one", 1},
	"sent_post_form_plus_recipient":  {200, "ID: one", 1},
	"sent_two_recipients":            {200, "ID: one", 1},
	"sent_unicode_hex":               {200, "ID: one", 1},
	"provider_refuses_recipient":     {502, "ERR: 105, ", 1},
	"refused_bad_number":             {400, "ERR: 105, ", 0},
	"refused_premium_number":         {403, "ERR: 114, ", 0},
	"refused_no_text":                {400, "ERR: ", 0},
	"refused_text_too_long":          {400, "ERR: 113, ", 0},
	"refused_too_many_recipients":    {400, "ERR: 101, ", 0},
	"refused_bad_unicode":            {400, "ERR: 116, ", 0},
	"refused_url_too_long":           {414, "ERR: 101, ", 0},
	"refused_no_route":               {403, "Forbidden: no route", 0},
	"refused_wrong_password_control": {403, "ERR: 001, ", 0},
}

// TestFuzzRequestPathSeeds runs each named seed through the fuzz target and
// checks it gets the answer its name promises, with the invariants.
func TestFuzzRequestPathSeeds(t *testing.T) {
	ft := newFuzzTarget(t)
	for name, want := range fuzzSeeds {
		raw := readFuzzSeed(t, filepath.Join("testdata", "fuzz", "FuzzRequestPath", name))
		res, ok := ft.serve(raw)
		if !ok {
			t.Errorf("%s: not an HTTP request", name)
			continue
		}
		if res.status != want.status || !strings.HasPrefix(res.body, want.body) || res.sent != want.sent {
			t.Errorf("%s: got %d %q with %d provider request(s), want %d %q… with %d", name, res.status, res.body, res.sent, want.status, want.body, want.sent)
		}
		t.Run(name, res.check)
	}
}

// readFuzzSeed reads a one-value []byte corpus file in the "go test fuzz
// v1" encoding.
func readFuzzSeed(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, value, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	quoted, ok := strings.CutPrefix(value, "[]byte(")
	quoted, ok2 := strings.CutSuffix(quoted, ")")
	if header != "go test fuzz v1" || !ok || !ok2 {
		t.Fatalf("%s: not a []byte corpus file", path)
	}
	raw, err := strconv.Unquote(quoted)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(raw)
}
