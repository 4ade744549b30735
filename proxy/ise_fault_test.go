package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/proxy/config"
)

// iseClient is ISE with postern as its HTTP proxy, sharing one connection
// pool across goroutines (as ISE's nodes do); its idle connections are
// closed when the test ends.
func iseClient(t testing.TB, p *postern, conns int) *http.Client {
	u, _ := url.Parse("http://" + p.Addr)
	tr := &http.Transport{Proxy: http.ProxyURL(u), MaxIdleConnsPerHost: conns}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// send is one legacy GET for text to 15551234567 (plus extra query).
func send(ctx context.Context, c *http.Client, text, extra string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+clickatellIn+"/http/sendmsg?"+legacyQuery("15551234567", text)+extra, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestClientDisconnectMidRequest: ISE hangs up while postern waits for the
// provider. The message is still finished — delivered when the provider
// answers, unknown when it never does — and audited with that outcome.
func TestClientDisconnectMidRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  fault
		outcome string
	}{
		{"provider answers later: delivered", faultGate, "delivered"},
		{"provider never answers: unknown", faultStallAfterRead, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp := newFaultProvider(t, always(tc.script))
			p := startPosternWith(t, faultConfig(fp, fp.CAFile(t), `request_timeout = "2s"`), env(), faultOptions(nil, &sleepLog{}))
			ctx, hangUp := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, _, err := send(ctx, iseClient(t, p, 1), faultText, "")
				done <- err
			}()
			waitFor(t, "the request at the provider", func() bool { return len(fp.entries()) == 1 })
			hangUp()
			if err := <-done; err == nil {
				t.Fatal("ISE's request succeeded although ISE hung up")
			}
			if tc.script == faultGate {
				fp.release()
			}
			waitFor(t, "the audit line", func() bool { return strings.Contains(p.Audit.String(), "\n") })
			a := parseAudit(t, p.Audit.String())
			ledger := fp.entries()
			if len(a) != 1 || a[0].Outcome != tc.outcome || len(ledger) != 1 {
				t.Fatalf("audit %+v, ledger %+v: want one %s line and one request", a, ledger, tc.outcome)
			}
			if tc.outcome == "delivered" && (len(a[0].IDs) != 1 || a[0].IDs[0] != ledger[0].ID) {
				t.Errorf("audit ids %v, want the provider's %s", a[0].IDs, ledger[0].ID)
			}
		})
	}
}

// TestIdenticalRequestsAreSentOnce: ISE sends the same request again while
// the first is still at the provider; postern joins the second to the first
// (one provider request, both get its answer, the audit says "joined"). Once
// the first is answered, the same request is a new message again, and a
// request that differs (here: ISE's climsgid) never joins.
func TestIdenticalRequestsAreSentOnce(t *testing.T) {
	fp := newFaultProvider(t, then(faultGate, faultNone))
	p := startPosternWith(t, faultConfig(fp, fp.CAFile(t), ""), env(), faultOptions(nil, &sleepLog{}))
	c := iseClient(t, p, 4)
	type reply struct {
		status int
		body   string
	}
	replies := make(chan reply, 2)
	for i := range 2 {
		go func() {
			s, b, err := send(context.Background(), c, faultText, "")
			if err != nil {
				t.Error(err)
			}
			replies <- reply{s, b}
		}()
		if i == 0 {
			<-fp.gated // the first is at the provider
		}
	}
	waitFor(t, "the second request to join", func() bool { return p.Srv.JoinersWaiting() == 1 })
	fp.release()
	first, second := <-replies, <-replies
	ledger := fp.entries()
	if len(ledger) != 1 {
		t.Fatalf("provider got %d requests, want 1: %+v", len(ledger), ledger)
	}
	want := reply{200, "ID: " + ledger[0].ID + "\n"}
	if first != want || second != want {
		t.Errorf("replies %+v and %+v, want both %+v", first, second, want)
	}
	a := parseAudit(t, p.Audit.String())
	if len(a) != 2 || a[0].Joined == a[1].Joined {
		t.Fatalf("audit: want one line joined and one not:\n%s", p.Audit)
	}
	for _, l := range a {
		if l.Outcome != "delivered" || len(l.IDs) != 1 || l.IDs[0] != ledger[0].ID || l.ClientMsgID != a[0].ClientMsgID || !strings.HasPrefix(l.ClientMsgID, "pst") {
			t.Errorf("audit line %+v: want delivered with the provider's id and the shared client message id", l)
		}
		if wantAttempts := map[bool]int{false: 1, true: 0}[l.Joined]; len(l.Attempts) != wantAttempts {
			t.Errorf("audit line joined=%v has %d attempts, want %d", l.Joined, len(l.Attempts), wantAttempts)
		}
	}

	// Not in flight any more: a repeat is sent; a different climsgid too.
	if s, _, _ := send(context.Background(), c, faultText, ""); s != 200 {
		t.Errorf("repeat after the first finished: status %d, want 200", s)
	}
	if s, _, _ := send(context.Background(), c, faultText, "&climsgid=ise42"); s != 200 {
		t.Errorf("request with climsgid: status %d, want 200", s)
	}
	if n := len(fp.entries()); n != 3 {
		t.Errorf("provider got %d requests, want 3", n)
	}
	a = parseAudit(t, p.Audit.String())
	if a[2].Joined || a[2].ClientMsgID != a[0].ClientMsgID {
		t.Errorf("repeat: joined=%v id %q, want sent, with the same derived client message id %q", a[2].Joined, a[2].ClientMsgID, a[0].ClientMsgID)
	}
	if a[3].ClientMsgID != "ise42" {
		t.Errorf("ISE's climsgid: audit client_msg_id %q, want ise42", a[3].ClientMsgID)
	}
}

// TestJoinedRequestOutlivesRequestTimeout: a joined request waits for the
// identical one in flight only as long as its own request_timeout. Its
// deadline can come first when a reload shortened request_timeout while the
// first was at the provider; it then answers 504 "outcome unknown" (the
// first may still deliver), audited as joined with no attempt of its own,
// and nothing more is sent. The first goes on and is delivered.
func TestJoinedRequestOutlivesRequestTimeout(t *testing.T) {
	fp := newFaultProvider(t, then(faultGate, faultNone))
	p := startPosternWith(t, faultConfig(fp, fp.CAFile(t), `request_timeout = "60s"`), env(), faultOptions(nil, &sleepLog{}))
	c := iseClient(t, p, 4)
	replies := make(chan string, 2)
	sendAsync := func() {
		go func() {
			s, b, err := send(context.Background(), c, faultText, "")
			if err != nil {
				b = err.Error()
			}
			replies <- fmt.Sprint(s, " ", b)
		}()
	}
	sendAsync()
	<-fp.gated // the first is at the provider, on a 60 s deadline
	shorter, err := config.Load("reload.toml", []byte(faultConfig(fp, fp.CAFile(t), `request_timeout = "1s"`)), config.LoadOptions{LookupEnv: func(k string) (string, bool) {
		v, ok := env()[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	p.Srv.Reload(shorter)
	sendAsync()
	waitFor(t, "the second request to join", func() bool { return p.Srv.JoinersWaiting() == 1 })

	// Bounded, so that a joiner that does not time out fails the test
	// instead of hanging it: release the first and see what the joiner got.
	var joined string
	select {
	case joined = <-replies:
	case <-time.After(30 * time.Second):
	}
	fp.release()
	if joined == "" {
		joined = <-replies
	}
	if want := "504 ERR: 901, Upstream timeout, outcome unknown\n"; joined != want {
		t.Errorf("joined request: got %q, want %q (before the first was answered)", joined, want)
	}
	first := <-replies
	ledger := fp.entries()
	if len(ledger) != 1 {
		t.Fatalf("provider got %d requests, want 1: %+v", len(ledger), ledger)
	}
	if want := "200 ID: " + ledger[0].ID + "\n"; first != want {
		t.Errorf("first request: got %q, want %q", first, want)
	}
	a := parseAudit(t, p.Audit.String())
	if len(a) != 2 {
		t.Fatalf("audit: %d lines, want 2:\n%s", len(a), p.Audit)
	}
	j, l := a[0], a[1] // the joiner finishes first
	if !j.Joined || j.Outcome != "unknown" || j.Status != 504 || len(j.Attempts) != 0 || j.ClientMsgID != l.ClientMsgID {
		t.Errorf("joiner's audit line %+v: want joined, unknown, 504, no attempts, the first's client message id", j)
	}
	if l.Joined || l.Outcome != "delivered" || len(l.IDs) != 1 || l.IDs[0] != ledger[0].ID {
		t.Errorf("first's audit line %+v: want delivered with the provider's id", l)
	}
	if !strings.Contains(p.Audit.String(), `"reason":"Upstream timeout, outcome unknown: an identical request in flight did not finish in time"`) {
		t.Errorf("audit lacks the joiner's reason:\n%s", p.Audit)
	}
}

// TestThousandConcurrentRequests: 1000 ISE requests at once against a
// provider that takes 10 at a time, with max_concurrent_upstream = 10. All
// are answered and delivered, the provider never sees more than 10 at once,
// and its ledger holds each message exactly once with the id ISE got.
func TestThousandConcurrentRequests(t *testing.T) {
	const n = 1000
	fp := newFaultProvider(t, nil, func(f *faultProvider) { f.limit = 10 })
	p := startPosternWith(t, faultConfig(fp, fp.CAFile(t), "max_concurrent_upstream = 10\nupstream_queue_wait = \"60s\""), env(), faultOptions(nil, &sleepLog{}))
	heapBefore := heapInUse()
	replies := concurrently(t, p, n, "burst")
	ids := map[string]bool{}
	for i, r := range replies {
		if !strings.HasPrefix(r, "200 ID: ") {
			t.Errorf("request %d: got %q, want 200 ID", i, r)
		}
		ids[strings.TrimSpace(strings.TrimPrefix(r, "200 ID: "))] = true
	}
	checkLedgerOnce(t, fp, n)
	fp.mu.Lock()
	peak, over := fp.peak, fp.overLimit
	fp.mu.Unlock()
	if peak > 10 || over != 0 {
		t.Errorf("provider saw %d at once (%d over its limit), want at most 10", peak, over)
	}
	for _, e := range fp.entries() {
		if !ids[e.ID] {
			t.Errorf("ledger id %s was not answered to ISE", e.ID)
		}
	}
	audit := parseAudit(t, p.Audit.String())
	delivered := 0
	for _, a := range audit {
		if a.Outcome == "delivered" && len(a.IDs) == 1 && ids[a.IDs[0]] {
			delivered++
		}
	}
	if len(audit) != n || delivered != n {
		t.Errorf("audit: %d lines, %d delivered with an id ISE got, want %d", len(audit), delivered, n)
	}
	// A burst must not leave memory behind: what stays is the test's own
	// ledger and audit copy, far below this bound.
	if grown := heapInUse() - heapBefore; grown > 64<<20 {
		t.Errorf("heap grew by %d MiB over the burst, want < 64 MiB", grown>>20)
	}
}

// TestOverloadIsAnswered503: with the 10 upstream slots held by messages
// the provider has not answered, 990 more wait upstream_queue_wait and get
// 503 "not sent"; nothing of theirs reaches the provider. Then the 10 are
// delivered.
func TestOverloadIsAnswered503(t *testing.T) {
	fp := newFaultProvider(t, always(faultGate))
	p := startPosternWith(t, faultConfig(fp, fp.CAFile(t), "max_concurrent_upstream = 10\nupstream_queue_wait = \"50ms\""), env(), faultOptions(nil, &sleepLog{}))
	c := iseClient(t, p, 1000)
	held := make(chan string, 10)
	for i := range 10 {
		go func() {
			s, b, err := send(context.Background(), c, fmt.Sprintf("held %d", i), "")
			held <- fmt.Sprint(s, " ", b, err)
		}()
	}
	for range 10 {
		<-fp.gated
	}
	for i, r := range concurrently(t, p, 990, "overflow") {
		if want := "503 ERR: 901, Too many messages in flight, message not sent\n"; r != want {
			t.Errorf("overflow %d: got %q, want %q", i, r, want)
		}
	}
	fp.release()
	for range 10 {
		if r := <-held; !strings.HasPrefix(r, "200 ID: ") {
			t.Errorf("held request: got %q, want 200 ID", r)
		}
	}
	checkLedgerOnce(t, fp, 10)
	if n := len(fp.entries()); n != 10 {
		t.Errorf("provider got %d requests, want 10", n)
	}
	busy := strings.Count(p.Audit.String(), `"reason":"Too many messages in flight, message not sent: max_concurrent_upstream busy for upstream_queue_wait"`)
	if busy != 990 {
		t.Errorf("audit: %d busy refusals, want 990", busy)
	}
}

// concurrently sends n requests at once, texts "<prefix> <i>", and returns
// "status body" per request.
func concurrently(t *testing.T, p *postern, n int, prefix string) []string {
	t.Helper()
	c := iseClient(t, p, n)
	out := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			s, b, err := send(context.Background(), c, fmt.Sprintf("%s %d", prefix, i), "")
			if err != nil {
				out[i] = err.Error()
				return
			}
			out[i] = fmt.Sprint(s, " ", b)
		})
	}
	close(start)
	wg.Wait()
	return out
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
