package proxy_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/proxytest"
)

// The plain listener's front (proxy/inbound) answers ISE's requests
// itself and hands everything else to net/http and goproxy. These tests
// send raw bytes over real connections and check which side answered
// (proxy.FrontCounts) and what the client got.

// fixedIDReply answers like Clickatell's One API with the same id every
// time, so that two answers to the same request are byte-comparable; a
// text with "FAILME" gets a provider error.
func fixedIDReply(w http.ResponseWriter, r received) {
	if strings.Contains(string(r.Body), "FAILME") {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":"boom"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"messages":[{"apiMessageId":"fixed0001","accepted":true,"to":"15551234567","error":null}],"error":null}`)
}

// frontConfig: proxy authentication on (for 407s), rate limits off (the
// same message is sent many times), small URL limit (for 414s).
func frontConfig(t *testing.T, fp *fakeProvider, server string) string {
	return guardConfig(fp, t, "proxy_user = \"ise\"\nproxy_password = \"env:PROXY_PW\"\nmax_url_bytes = 1024\n"+server,
		"per_number = \"off\"\nper_client = \"off\"", "")
}

const frontProxyPW = "proxy-PW-front-5521"

func frontEnv() map[string]string {
	return map[string]string{"TEST_TOKEN": testToken, "PROXY_PW": frontProxyPW}
}

var frontAuth = "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("ise:"+frontProxyPW)) + "\r\n"

// dialFront opens a connection to addr that the test closes at its end,
// with a deadline that bounds every read and write on it.
func dialFront(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return conn, bufio.NewReader(conn)
}

// roundTrip writes raw on a new connection and reads one response.
func roundTrip(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	conn, br := dialFront(t, addr)
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	return readReply(t, br)
}

func readReply(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the reply body: %v", err)
	}
	return resp, string(body)
}

// TestFrontAnswersAsNetHTTPDid: every kind of reply — a message sent in
// each way in, a provider error, a POST, each refusal — is the same from
// the front as from net/http and goproxy (the same request, padded past the
// front's 16 KiB head so that it is handed off): status, headers but Date,
// body, and "Connection: close" when asked.
func TestFrontAnswersAsNetHTTPDid(t *testing.T) {
	fp := newFakeProvider(t, fixedIDReply)
	p := startPostern(t, frontConfig(t, fp, ""), frontEnv())
	q := "/http/sendmsg?" + legacyQuery("15551234567", "Hello from ISE")
	cases := []struct {
		name, raw  string
		wantStatus int
	}{
		{"direct", "GET " + q + " HTTP/1.1\r\nHost: " + p.Addr + "\r\n" + frontAuth + "User-Agent: Java/1.8\r\n", 200},
		{"proxy", "GET http://" + clickatellIn + q + " HTTP/1.1\r\nHost: " + clickatellIn + "\r\n" + frontAuth, 200},
		{"dns", "GET " + q + " HTTP/1.1\r\nHost: " + clickatellIn + "\r\n" + frontAuth, 200},
		{"connection close", "GET " + q + " HTTP/1.1\r\nHost: " + p.Addr + "\r\nConnection: close\r\n" + frontAuth, 200},
		{"provider error", "GET /http/sendmsg?" + legacyQuery("15551234567", "FAILME") + " HTTP/1.1\r\nHost: h\r\n" + frontAuth, 0},
		{"post form", "POST /http/sendmsg HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\n" + frontAuth +
			"Content-Length: " + itoa(len(legacyQuery("15551234567", "posted"))) + "\r\n\r\n" + legacyQuery("15551234567", "posted"), 200},
		{"no proxy credentials", "GET " + q + " HTTP/1.1\r\nHost: h\r\n", http.StatusProxyAuthRequired},
		{"no route", "GET /nowhere?x=1 HTTP/1.1\r\nHost: h\r\n" + frontAuth, http.StatusForbidden},
		{"missing parameters", "GET /http/sendmsg?user=" + legacyUser + "&password=" + legacyPass + " HTTP/1.1\r\nHost: h\r\n" + frontAuth, 0},
		{"URL too long", "GET /http/sendmsg?" + legacyQuery("15551234567", strings.Repeat("x", 1000)) + " HTTP/1.1\r\nHost: h\r\n" + frontAuth, http.StatusRequestURITooLong},
	}
	pad := "X-Pad: " + strings.Repeat("p", 17<<10) + "\r\n"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			head, body, _ := strings.Cut(tc.raw, "\r\n\r\n")
			if !strings.Contains(tc.raw, "\r\n\r\n") {
				head, body = strings.TrimSuffix(tc.raw, "\r\n"), ""
			}
			served0, off0 := proxy.FrontCounts(p.Srv)
			front, frontBody := roundTrip(t, p.Addr, head+"\r\n\r\n"+body)
			served1, off1 := proxy.FrontCounts(p.Srv)
			old, oldBody := roundTrip(t, p.Addr, head+"\r\n"+pad+"\r\n"+body)
			served2, off2 := proxy.FrontCounts(p.Srv)
			longURL := tc.wantStatus == http.StatusRequestURITooLong // over max_url_bytes: handed off too
			if !longURL && (served1 != served0+1 || off1 != off0) {
				t.Errorf("the front did not answer the request itself (served %d->%d, handed off %d->%d)", served0, served1, off0, off1)
			}
			if served2 != served1 || off2 != off1+1 {
				t.Errorf("the padded request was not handed off (served %d->%d, handed off %d->%d)", served1, served2, off1, off2)
			}
			if tc.wantStatus != 0 && front.StatusCode != tc.wantStatus {
				t.Errorf("front: status %d %q, want %d", front.StatusCode, frontBody, tc.wantStatus)
			}
			if front.StatusCode != old.StatusCode || front.Status != old.Status || frontBody != oldBody {
				t.Errorf("front %q %q, net/http %q %q", front.Status, frontBody, old.Status, oldBody)
			}
			front.Header.Del("Date")
			old.Header.Del("Date")
			fh, _ := json.Marshal(front.Header)
			oh, _ := json.Marshal(old.Header)
			if string(fh) != string(oh) || front.ContentLength != old.ContentLength || front.Close != old.Close {
				t.Errorf("headers: front %s (length %d, close %v), net/http %s (length %d, close %v)",
					fh, front.ContentLength, front.Close, oh, old.ContentLength, old.Close)
			}
		})
	}
	if got := len(fp.Requests()); got != 12 {
		t.Errorf("provider got %d requests, want 12 (6 messages, each twice)", got)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestFrontHandsOffMidConnection: a connection that first sent requests
// the front answers — one at a time and pipelined — and then a CONNECT, or
// a request with two Content-Lengths, or one with a chunked body, is
// handed to net/http with the bytes already read: goproxy refuses the
// CONNECT, net/http refuses the smuggling attempt (as before the front),
// and the chunked POST is served.
func TestFrontHandsOffMidConnection(t *testing.T) {
	fp := newFakeProvider(t, fixedIDReply)
	p := startPostern(t, frontConfig(t, fp, ""), frontEnv())
	get := "GET /http/sendmsg?" + legacyQuery("15551234567", "hi") + " HTTP/1.1\r\nHost: h\r\n" + frontAuth + "\r\n"
	form := legacyQuery("15551234567", "chunked")
	for _, tc := range []struct {
		name, next string
		wantStatus int
	}{
		{"CONNECT", "CONNECT " + clickatellIn + ":443 HTTP/1.1\r\nHost: " + clickatellIn + ":443\r\n" + frontAuth + "\r\n", http.StatusForbidden},
		{"two Content-Lengths", "POST /http/sendmsg HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n" + frontAuth + "\r\nabcd", http.StatusBadRequest},
		{"chunked", "POST /http/sendmsg HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n" + frontAuth +
			"\r\n" + strings.TrimPrefix(itoaHex(len(form)), "0") + "\r\n" + form + "\r\n0\r\n\r\n", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served0, off0 := proxy.FrontCounts(p.Srv)
			conn, br := dialFront(t, p.Addr)
			io.WriteString(conn, get)
			if resp, body := readReply(t, br); resp.StatusCode != 200 || resp.Close {
				t.Fatalf("first GET: %d %q (close %v)", resp.StatusCode, body, resp.Close)
			}
			// Two more, pipelined, then the one for net/http in the same write.
			io.WriteString(conn, get+get+tc.next)
			for i := range 2 {
				if resp, body := readReply(t, br); resp.StatusCode != 200 {
					t.Fatalf("pipelined GET %d: %d %q", i, resp.StatusCode, body)
				}
			}
			resp, body := readReply(t, br)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("got %d %q, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			served1, off1 := proxy.FrontCounts(p.Srv)
			if served1-served0 != 3 || off1-off0 != 1 {
				t.Errorf("front served %d and handed off %d, want 3 and 1", served1-served0, off1-off0)
			}
		})
	}
}

func itoaHex(n int) string {
	const digits = "0123456789abcdef"
	s := ""
	for ; n > 0; n /= 16 {
		s = string(digits[n%16]) + s
	}
	return "0" + s
}

// TestFrontKeepAlive: requests on one connection are answered one after
// another on it; "Connection: close" is answered with it and the
// connection ends.
func TestFrontKeepAlive(t *testing.T) {
	fp := newFakeProvider(t, fixedIDReply)
	p := startPostern(t, frontConfig(t, fp, ""), frontEnv())
	conn, br := dialFront(t, p.Addr)
	get := "GET /http/sendmsg?" + legacyQuery("15551234567", "again") + " HTTP/1.1\r\nHost: h\r\n" + frontAuth
	for i := range 3 {
		io.WriteString(conn, get+"\r\n")
		if resp, body := readReply(t, br); resp.StatusCode != 200 || resp.Close || !strings.HasPrefix(body, "ID: fixed0001") {
			t.Fatalf("request %d: %d %q (close %v)", i, resp.StatusCode, body, resp.Close)
		}
	}
	io.WriteString(conn, get+"Connection: close\r\n\r\n")
	if resp, _ := readReply(t, br); !resp.Close {
		t.Error("reply to Connection: close does not say so")
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after Connection: close: read %d bytes, %v; want EOF", n, err)
	}
	if served, off := proxy.FrontCounts(p.Srv); served != 4 || off != 0 {
		t.Errorf("front served %d, handed off %d; want 4 and 0", served, off)
	}
}

// TestFrontClientGoneMidRequest: a client that closes part-way through a
// head or a body gets what net/http answered before (400, nothing sent),
// and the server serves the next client. Nothing it sent reaches a log.
func TestFrontClientGoneMidRequest(t *testing.T) {
	fp := newFakeProvider(t, fixedIDReply)
	p := startPostern(t, frontConfig(t, fp, ""), frontEnv())
	q := "/http/sendmsg?" + legacyQuery("15551234567", "secret text 7731")
	for _, partial := range []string{
		"GET " + q + " HTTP/1.1\r\nHost: h\r\nX-Half",
		"POST /http/sendmsg HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n" + frontAuth + "\r\n" + legacyQuery("15551234567", "cut"),
	} {
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(conn, partial)
		conn.(*net.TCPConn).CloseWrite()
		reply, _ := io.ReadAll(conn)
		conn.Close()
		if len(reply) > 0 && !strings.HasPrefix(string(reply), "HTTP/1.1 400 ") {
			t.Errorf("client gone mid-request got %q, want nothing or a 400", reply)
		}
	}
	if resp, body := roundTrip(t, p.Addr, "GET "+q+" HTTP/1.1\r\nHost: h\r\n"+frontAuth+"\r\n"); resp.StatusCode != 200 {
		t.Errorf("next client: %d %q", resp.StatusCode, body)
	}
	if n := len(fp.Requests()); n != 1 {
		t.Errorf("provider got %d requests, want 1", n)
	}
	mustNotContain(t, "postern log", p.Log.String(), "secret text 7731", "secret+text+7731", legacyPass)
}

// TestFrontSlowHeadWithinTimeout: a head that arrives in pieces within
// header_read_timeout is answered; see TestSlowlorisIsCutOff for one that
// does not.
func TestFrontSlowHeadWithinTimeout(t *testing.T) {
	fp := newFakeProvider(t, fixedIDReply)
	p := startPostern(t, frontConfig(t, fp, `header_read_timeout = "5s"`), frontEnv())
	conn, br := dialFront(t, p.Addr)
	raw := "GET /http/sendmsg?" + legacyQuery("15551234567", "slow") + " HTTP/1.1\r\nHost: h\r\n" + frontAuth + "\r\n"
	for i := 0; i < len(raw); i += len(raw)/4 + 1 {
		io.WriteString(conn, raw[i:min(i+len(raw)/4+1, len(raw))])
		time.Sleep(100 * time.Millisecond)
	}
	if resp, body := readReply(t, br); resp.StatusCode != 200 {
		t.Errorf("slow head: %d %q", resp.StatusCode, body)
	}
	if served, off := proxy.FrontCounts(p.Srv); served != 1 || off != 0 {
		t.Errorf("front served %d, handed off %d; want 1 and 0", served, off)
	}
}

// TestFrontShutdown: on shutdown an idle connection — the front's or
// net/http's — is closed at once, and a busy one gets its reply, with
// "Connection: close", before Serve returns; new connections are refused.
func TestFrontShutdown(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	fp := newFakeProvider(t, func(w http.ResponseWriter, r received) {
		if strings.Contains(string(r.Body), "busy") {
			arrived <- struct{}{}
			<-release
		}
		fixedIDReply(w, r)
	})
	srv := proxy.New(proxytest.Load(t, frontConfig(t, fp, ""), frontEnv()), proxy.Options{})
	addr, stop := proxytest.Serve(t, srv)
	get := func(text, extra string) string {
		return "GET /http/sendmsg?" + legacyQuery("15551234567", text) + " HTTP/1.1\r\nHost: h\r\n" + frontAuth + extra + "\r\n"
	}
	dial := func() (net.Conn, *bufio.Reader) { return dialFront(t, addr) }
	// idleFront: answered by the front, now idle; idleOld: handed off
	// (an Expect header is net/http's), answered, now idle in net/http.
	idleFront, idleFrontR := dial()
	io.WriteString(idleFront, get("idle", ""))
	readReply(t, idleFrontR)
	idleOld, idleOldR := dial()
	io.WriteString(idleOld, get("idle old", "X-Pad: "+strings.Repeat("p", 17<<10)+"\r\n"))
	readReply(t, idleOldR)
	busy, busyR := dial()
	io.WriteString(busy, get("busy", ""))
	<-arrived

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	for name, br := range map[string]*bufio.Reader{"front": idleFrontR, "net/http": idleOldR} {
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("idle %s connection on shutdown: read %d bytes, %v; want EOF", name, n, err)
		}
	}
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) while a message was in flight", err)
	default:
	}
	close(release)
	resp, body := readReply(t, busyR)
	if resp.StatusCode != 200 || !resp.Close {
		t.Errorf("busy connection on shutdown: %d %q (close %v), want 200 with Connection: close", resp.StatusCode, body, resp.Close)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, get("late", ""))
		if reply, _ := io.ReadAll(conn); len(reply) > 0 {
			t.Errorf("a connection after shutdown was answered: %q", reply)
		}
		conn.Close()
	}
}

// TestFrontParseErrorsLogNothing: requests outside the front's subset that
// net/http refuses — each carrying the legacy password and a message text
// — are answered 4xx, and neither reaches a log or the audit trail.
func TestFrontParseErrorsLogNothing(t *testing.T) {
	fp := newFakeProvider(t, fixedIDReply)
	p := startPostern(t, frontConfig(t, fp, ""), frontEnv())
	const text = "parse-error-TEXT-8812"
	q := "/http/sendmsg?" + legacyQuery("15551234567", text)
	for _, raw := range []string{
		"GET " + q + " HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
		"GET " + q + " HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n",
		"POST " + q + " HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"POST " + q + " HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"GET " + q + " HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
		"GET " + q + " HTTP/1.1\r\nX-Big: " + strings.Repeat("b", 40<<10) + "\r\nHost: h\r\n\r\n",
		"GET " + q + " HTTP/1.1\r\nTransfer-Encoding : chunked\r\nHost: h\r\n\r\n",
	} {
		resp, body := roundTrip(t, p.Addr, raw)
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			t.Errorf("%.60q...: %d %q, want a 4xx", raw, resp.StatusCode, body)
		}
	}
	if served, off := proxy.FrontCounts(p.Srv); served != 0 || off != 7 {
		t.Errorf("front served %d, handed off %d; want 0 and 7", served, off)
	}
	mustNotContain(t, "postern log", p.Log.String(), text, legacyPass)
	mustNotContain(t, "postern audit", p.Audit.String(), text, legacyPass)
}
