package deliver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/internal/macpool"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/rewrite"
)

// scriptedTransport answers each provider request with the next step of a
// script, without any network: a step is an error (nothing reached the
// provider) or a status and body.
type scriptedTransport struct {
	mu    sync.Mutex
	steps []step
	got   []*http.Request
}

type step struct {
	err    error
	status int
	header http.Header
	body   string
}

func (s *scriptedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, r)
	if len(s.steps) == 0 {
		return nil, errors.New("script exhausted")
	}
	st := s.steps[0]
	s.steps = s.steps[1:]
	if st.err != nil {
		return nil, st.err
	}
	h := st.header
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: st.status, Header: h, Body: io.NopCloser(strings.NewReader(st.body)), Request: r}, nil
}

const oneRoute = `
[[route]]
name = "one"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "https://one.invalid/v1/message"
token = "k"
`

func oneAccepted(to string) step {
	return step{status: http.StatusAccepted, body: fmt.Sprintf(`{"messages":[{"apiMessageId":"id-%s","accepted":true,"to":%q}],"error":null}`, to, to)}
}

func newTestDeliverer(t *testing.T, toml string, tr http.RoundTripper) (*Deliverer, *config.Config) {
	t.Helper()
	cfg, err := config.Load("t.toml", []byte(toml), config.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d := New(cfg, Options{Transport: tr, RetryJitter: func() float64 { return 0 },
		RetrySleep: func(context.Context, time.Duration) error { return nil }})
	return d, cfg
}

// TestDeliverRetriesWhatWasNotSent: a dial error (nothing written) is sent
// again and recorded as a retried attempt; the client message id is
// derived and passed on each time.
func TestDeliverRetriesWhatWasNotSent(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tr := &scriptedTransport{steps: []step{{err: dial}, oneAccepted("15551234567")}}
	d, cfg := newTestDeliverer(t, oneRoute, tr)
	dl := d.Deliver(context.Background(), cfg.Routes[0], rewrite.Message{To: []string{"15551234567"}, Text: "hi"})
	if outcome, _, reason := Summarize(dl.Result); outcome != "delivered" {
		t.Fatalf("Deliver: outcome %q (%s), want delivered", outcome, reason)
	}
	if len(dl.Attempts) != 2 || dl.Attempts[0].Retry != "not sent" || dl.Attempts[1].Outcome != "delivered" {
		t.Errorf("Deliver: attempts %+v, want a retried \"not sent\" then delivered", dl.Attempts)
	}
	if !strings.HasPrefix(dl.ClientMsgID, "pst") || len(dl.ClientMsgID) != 27 {
		t.Errorf("Deliver: client message id %q, want pst + 24 hex", dl.ClientMsgID)
	}
	if len(tr.got) != 2 {
		t.Errorf("provider requests: got %d, want 2", len(tr.got))
	}
	if ua := tr.got[0].Header.Get("User-Agent"); ua != "postern" {
		t.Errorf("User-Agent: got %q, want postern", ua)
	}
}

// TestDeliverNeverRetriesAnUnknownOutcome: a reply that cannot be read
// after a 2xx may have been taken: it is not sent again.
func TestDeliverNeverRetriesAnUnknownOutcome(t *testing.T) {
	tr := &scriptedTransport{steps: []step{{status: http.StatusAccepted, body: "not json"}, oneAccepted("15551234567")}}
	d, cfg := newTestDeliverer(t, oneRoute, tr)
	dl := d.Deliver(context.Background(), cfg.Routes[0], rewrite.Message{To: []string{"15551234567"}, Text: "hi"})
	if len(tr.got) != 1 || len(dl.Attempts) != 1 || dl.Attempts[0].Retry != "" {
		t.Errorf("Deliver: %d requests, attempts %+v; want one request, not retried", len(tr.got), dl.Attempts)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"5", 5 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	} {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRetryAfter(%q): got (%v, %v), want (%v, %v)", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestClassifyTransportError(t *testing.T) {
	live := context.Background()
	expired, cancel := context.WithCancel(live)
	cancel()
	plain := errors.New("connection reset")
	for _, c := range []struct {
		name    string
		ctx     context.Context
		err     error
		wrote   bool
		status  int
		outcome rewrite.Outcome
		desc    string
	}{
		{"not written", live, plain, false, http.StatusBadGateway, rewrite.Refused, "Upstream unreachable, message not sent"},
		{"written", live, plain, true, http.StatusBadGateway, rewrite.Unknown, "Upstream connection failed, outcome unknown"},
		{"timeout before", live, context.DeadlineExceeded, false, http.StatusGatewayTimeout, rewrite.Refused, "Upstream timeout, message not sent"},
		{"timeout after", live, context.DeadlineExceeded, true, http.StatusGatewayTimeout, rewrite.Unknown, "Upstream timeout, outcome unknown"},
		{"deadline passed", expired, plain, true, http.StatusGatewayTimeout, rewrite.Unknown, "Upstream timeout, outcome unknown"},
	} {
		e := classifyTransportError(c.ctx, c.err, c.wrote)
		if e.Status != c.status || e.Outcome != c.outcome || e.Description != c.desc || e.Failover == c.wrote {
			t.Errorf("classifyTransportError(%s): got %d %v %q failover=%v, want %d %v %q failover=%v",
				c.name, e.Status, e.Outcome, e.Description, e.Failover, c.status, c.outcome, c.desc, !c.wrote)
		}
	}
}

// TestKeyFor: identical messages share a key; anything that changes what
// the guest gets, or the route, makes another.
func TestKeyFor(t *testing.T) {
	key := []byte("k")
	base := rewrite.Message{To: []string{"1", "2"}, Text: "pw 1234", From: "Guest"}
	k := keyFor(macpool.New(key), "r", base)
	if keyFor(macpool.New(key), "r", base) != k {
		t.Fatal("keyFor: the same message gave two keys")
	}
	variants := map[string]func(m *rewrite.Message) (string, []byte){
		"route":      func(m *rewrite.Message) (string, []byte) { return "r2", key },
		"hmac key":   func(m *rewrite.Message) (string, []byte) { return "r", []byte("other") },
		"recipients": func(m *rewrite.Message) (string, []byte) { m.To = []string{"1"}; return "r", key },
		"order":      func(m *rewrite.Message) (string, []byte) { m.To = []string{"2", "1"}; return "r", key },
		"text":       func(m *rewrite.Message) (string, []byte) { m.Text = "pw 1235"; return "r", key },
		"from":       func(m *rewrite.Message) (string, []byte) { m.From = ""; return "r", key },
		"climsgid":   func(m *rewrite.Message) (string, []byte) { m.Options.ClientMessageID = "x"; return "r", key },
		"boundary":   func(m *rewrite.Message) (string, []byte) { m.To = []string{"12"}; m.Text = "pw 1234"; return "r", key },
	}
	for name, change := range variants {
		m := base
		m.To = append([]string(nil), base.To...)
		route, hk := change(&m)
		if keyFor(macpool.New(hk), route, m) == k {
			t.Errorf("keyFor: changing the %s kept the key", name)
		}
	}
	if id := k.clientMessageID(); len(id) != 27 || !strings.HasPrefix(id, "pst") {
		t.Errorf("clientMessageID: got %q, want pst + 24 hex digits", id)
	}
}

// TestRetryPlan: who is sent again, after how long, and when not at all.
func TestRetryPlan(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	p := retryPolicy{max: 2, jitter: func() float64 { return 0 }, now: func() time.Time { return now }}
	one := &rewrite.ClickatellOne{}
	notSentErr := func(ns *notSent) *rewrite.Error {
		return &rewrite.Error{Outcome: rewrite.Refused, Failover: true, Cause: ns}
	}
	res := rewrite.Result{Recipients: []rewrite.Recipient{
		{To: "a", Err: notSentErr(&notSent{err: errors.New("dial")})},
		{To: "b", Err: notSentErr(&notSent{status: 429, retryAfter: "1", err: errors.New("429")})},
		{To: "c", Err: &rewrite.Error{Outcome: rewrite.Unknown, Cause: &notSent{err: errors.New("x")}}},
		{To: "d", ID: "ok"},
		{To: "e", Err: notSentErr(&notSent{status: 503, err: errors.New("503 without Retry-After")})},
	}}
	to, wait, why, ok := p.plan(context.Background(), one, res, 1)
	if !ok || strings.Join(to, ",") != "a,b" || wait != time.Second || why != "HTTP 429 Retry-After" {
		t.Errorf("plan: got %v %v %q %v, want [a b] 1s \"HTTP 429 Retry-After\" true", to, wait, why, ok)
	}
	if _, _, _, ok := p.plan(context.Background(), one, res, 3); ok {
		t.Error("plan: retried past max")
	}
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(time.Second))
	defer cancel()
	if _, _, _, ok := p.plan(ctx, one, res, 1); ok {
		t.Error("plan: retried with no time left to finish")
	}
	if w := p.backoff(1); w != retryBase/2 {
		t.Errorf("backoff(1) with zero jitter: got %v, want %v", w, retryBase/2)
	}
	if w := p.backoff(10); w != retryCap/2 {
		t.Errorf("backoff(10) with zero jitter: got %v, want %v", w, retryCap/2)
	}
}

// TestKeyForUnchanged: a message's key (behind client_msg_id and the
// store's claims) is the same as the previous releases derived, so
// replicas of two versions, or one restarted across an upgrade, name a
// message alike. Values from the field-by-field HMAC writes before they
// were framed into one buffer.
func TestKeyForUnchanged(t *testing.T) {
	for _, c := range []struct {
		route string
		m     rewrite.Message
		want  string
	}{
		{"guest", rewrite.Message{To: []string{"15551234567", "447700900123"}, Text: "Your code is 12345", From: "Guest",
			Options: rewrite.Options{MO: true, Concat: 3, ClientMessageID: "ise-7", Callback: 6, DeliveryAck: true}},
			"1423df662e32a10cb0d1eb5cebf586602f428ce2a1be7cf4a1c65bc42e3a9f19"},
		{"r", rewrite.Message{To: []string{"1"}, Text: "hi"}, "08b16da1228fc5d279fc876cb29bccbf99001d9fad25af3ee6c765abf4fcb422"},
	} {
		if k := keyFor(macpool.New([]byte("id-key")), c.route, c.m); hexKey(k) != c.want {
			t.Errorf("keyFor(%s): %s, want %s", c.route, hexKey(k), c.want)
		}
	}
}
