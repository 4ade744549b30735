package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/internal/redistest"
	"github.com/postern/postern/proxy/audit"
	"github.com/postern/postern/proxy/proxytest"
)

// The [cluster] suite: two real postern processes share one real
// redis-server. What a replica sends is counted from the fake provider's
// ledger, what ISE was told from the replies, and what was recorded from
// each process's audit lines.

// oneAPIProvider answers every One API message as accepted with a unique
// id; gate, when not nil, holds each reply until it is closed.
func oneAPIProvider(t *testing.T, gate chan struct{}, arrived chan struct{}) *proxytest.Provider {
	t.Helper()
	var n atomic.Int64
	return proxytest.NewProvider(t, func(w http.ResponseWriter, r proxytest.Received) {
		var body struct {
			Messages []struct{ To string } `json:"messages"`
		}
		json.Unmarshal(r.Body, &body)
		if arrived != nil {
			arrived <- struct{}{}
		}
		if gate != nil {
			<-gate
		}
		var out strings.Builder
		out.WriteString(`{"messages":[`)
		for i, m := range body.Messages {
			if i > 0 {
				out.WriteString(",")
			}
			fmt.Fprintf(&out, `{"apiMessageId":"c%06d","accepted":true,"to":%q,"error":null}`, n.Add(1), m.To)
		}
		out.WriteString(`],"error":null}`)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, out.String())
	})
}

// clusterConfig is a config with one route to p, [limits] limits and a
// [cluster] on redisURL under prefix.
func clusterConfig(t *testing.T, dir string, p *proxytest.Provider, redisURL, prefix, limits, cluster string) string {
	t.Helper()
	return writeFile(t, dir, "postern.toml", fmt.Sprintf(`
[server]
request_timeout = "20s"

[limits]
%s

[cluster]
redis = %q
key_prefix = %q
%s

[trust]
ca_files = [%q]

[[route]]
name = "one"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "%s"
token = "env:CLICKATELL_API_KEY"
`, limits, redisURL, prefix, cluster, p.CAFile(t), p.URL("/v1/message")))
}

// replicas starts n postern processes with cfg.
func replicas(t *testing.T, n int, cfg string) []*daemon {
	t.Helper()
	bin := buildDockerBinary(t)
	var ds []*daemon
	for range n {
		ds = append(ds, startDaemon(t, bin, t.TempDir(), opsEnv, "serve", "-config", cfg))
	}
	return ds
}

// send sends one ISE GET to d.
func send(d *daemon, to, text string) reply {
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Get("http://" + d.addr + "/http/sendmsg?to=" + to + "&text=" + url.QueryEscape(text))
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: string(b)}
}

// sendAll sends n requests, request i to replica i%len(ds), 20 at a time,
// and returns the replies in order.
func sendAll(t *testing.T, ds []*daemon, n int, req func(i int) (to, text string)) []reply {
	t.Helper()
	out := make([]reply, n)
	sem := make(chan struct{}, 20)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			to, text := req(i)
			out[i] = send(ds[i%len(ds)], to, text)
		}()
	}
	wg.Wait()
	return out
}

// auditLines reads the audit lines a replica wrote to stdout.
func auditLines(t *testing.T, d *daemon) []audit.Line {
	t.Helper()
	var out []audit.Line
	for _, raw := range strings.Split(d.stdout.String(), "\n") {
		var l audit.Line
		if json.Unmarshal([]byte(raw), &l) == nil && l.Msg == "message" {
			out = append(out, l)
		}
	}
	return out
}

// allAuditLines waits until the replicas together wrote n audit lines (the
// console sink writes from a queue, after the reply) and returns them.
func allAuditLines(t *testing.T, ds []*daemon, n int) []audit.Line {
	t.Helper()
	var lines []audit.Line
	waitFor(t, fmt.Sprintf("%d audit lines", n), func() bool {
		lines = nil
		for _, d := range ds {
			lines = append(lines, auditLines(t, d)...)
		}
		return len(lines) >= n
	})
	return lines
}

// metric reads one unlabelled series from d's /metrics (-1 when absent).
func metric(t *testing.T, d *daemon, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + d.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(string(b))
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func count(rs []reply, status int, prefix string) int {
	n := 0
	for _, r := range rs {
		if r.err == nil && r.status == status && strings.HasPrefix(r.body, prefix) {
			n++
		}
	}
	return n
}

// TestClusterLimitsHoldAcrossReplicas: with two replicas sharing a store,
// daily_max, per_number and per_client each let exactly their limit
// through overall under 200 concurrent requests split across both; the
// rest get the same 429 as a lone replica, and every audit line says
// "store":"redis".
func TestClusterLimitsHoldAcrossReplicas(t *testing.T) {
	redisURL := "redis://" + redistest.Shared(t) + "/0"
	for _, c := range []struct {
		name, limits string
		limit        int
		req          func(i int) (string, string)
		throttled    string
	}{
		{"daily_max", "daily_max = 10\nper_number = \"off\"\nper_client = \"off\"", 10,
			func(i int) (string, string) { return fmt.Sprintf("1555%07d", 1000000+i), "daily" }, "ERR: 130, Maximum MT limit exceeded"},
		{"per_number", "daily_max = 0\nper_number = \"5/1h\"\nper_client = \"off\"", 5,
			func(i int) (string, string) { return "15551234567", fmt.Sprint("number ", i) }, "ERR: 130, Maximum MT limit exceeded"},
		{"per_client", "daily_max = 0\nper_number = \"off\"\nper_client = \"7/1h\"", 7,
			func(i int) (string, string) { return fmt.Sprintf("1555%07d", 1000000+i), "client" }, "ERR: 130, Maximum MT limit exceeded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := oneAPIProvider(t, nil, nil)
			// A generous store_timeout: on a busy machine (-race) a slow
			// answer must not turn this test of sharing into one of fallback.
			cfg := clusterConfig(t, t.TempDir(), p, redisURL, fmt.Sprintf("limits-%s-%d:", c.name, time.Now().UnixNano()), c.limits,
				`store_timeout = "5s"`)
			ds := replicas(t, 2, cfg)
			rs := sendAll(t, ds, 200, c.req)
			sent := len(p.Requests())
			if sent != c.limit || count(rs, 200, "ID: ") != c.limit || count(rs, 429, c.throttled) != 200-c.limit {
				t.Fatalf("sent %d, delivered %d, throttled %d; want %d, %d, %d", sent, count(rs, 200, "ID: "),
					count(rs, 429, c.throttled), c.limit, c.limit, 200-c.limit)
			}
			lines := allAuditLines(t, ds, 200)
			for _, l := range lines {
				if l.Store != "redis" {
					t.Errorf("audit line with store %q, want redis: %+v", l.Store, l.Record)
				}
			}
			if len(lines) != 200 {
				t.Errorf("%d audit lines, want 200", len(lines))
			}
		})
	}
}

// TestClusterDuplicateSentOnce: the same request to both replicas at once
// is sent once and both get its reply; a repeat within dedup_window to the
// other replica is answered from the first reply, audited "joined":true,
// and not sent.
func TestClusterDuplicateSentOnce(t *testing.T) {
	redisURL := "redis://" + redistest.Shared(t) + "/0"
	gate, arrived := make(chan struct{}), make(chan struct{}, 8)
	p := oneAPIProvider(t, gate, arrived)
	t.Cleanup(func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	})
	cfg := clusterConfig(t, t.TempDir(), p, redisURL, fmt.Sprintf("dup-%d:", time.Now().UnixNano()),
		"per_number = \"off\"", "dedup_window = \"2m\"\nstore_timeout = \"5s\"")
	ds := replicas(t, 2, cfg)
	first := make(chan reply, 1)
	go func() { first <- send(ds[0], "15551234567", "your code 1234") }()
	<-arrived // replica 0 is sending
	second := make(chan reply, 1)
	go func() { second <- send(ds[1], "15551234567", "your code 1234") }()
	time.Sleep(300 * time.Millisecond) // replica 1 waits for it (or, if later, gets the kept reply)
	close(gate)
	r1, r2 := <-first, <-second
	if r1.status != 200 || !strings.HasPrefix(r1.body, "ID: ") || r2 != r1 {
		t.Fatalf("replies %+v and %+v, want the same ID", r1, r2)
	}
	r3 := send(ds[1], "15551234567", "your code 1234")
	if r3 != r1 {
		t.Fatalf("repeat within dedup_window: %+v, want %+v", r3, r1)
	}
	if n := len(p.Requests()); n != 1 {
		t.Fatalf("provider got %d requests, want 1", n)
	}
	var joined, own int
	for _, l := range allAuditLines(t, ds, 3) {
		if l.Joined {
			joined++
			if len(l.Attempts) != 0 || l.Outcome != "delivered" || l.Store != "redis" {
				t.Errorf("joined line: %+v", l.Record)
			}
		} else {
			own++
		}
	}
	if joined != 2 || own != 1 {
		t.Errorf("%d joined and %d own audit lines, want 2 and 1", joined, own)
	}
}

// TestClusterStoreFailures: Redis killed mid-run, restarted, then paused
// beyond store_timeout and resumed, under on_store_error = "local": every
// message is answered, each delivered one is in the ledger exactly once
// and in exactly one audit line; the fallback and the recovery show in
// postern_store_up, postern_store_errors_total and the log.
func TestClusterStoreFailures(t *testing.T) {
	srv := redistest.Start(t)
	p := oneAPIProvider(t, nil, nil)
	cfg := clusterConfig(t, t.TempDir(), p, srv.URL(), "fail:", "per_number = \"off\"\ndaily_max = 0",
		`store_timeout = "100ms"`)
	ds := replicas(t, 2, cfg)
	var all []reply
	next := 0
	batch := func(n int) []reply {
		start := next
		next += n
		rs := sendAll(t, ds, n, func(i int) (string, string) { return "15551234567", fmt.Sprint("message ", start+i) })
		all = append(all, rs...)
		return rs
	}
	upOn := func(want float64) func() bool {
		return func() bool {
			return metric(t, ds[0], "postern_store_up") == want && metric(t, ds[1], "postern_store_up") == want
		}
	}

	batch(20)
	// Killed while messages are in flight.
	done := make(chan struct{})
	go func() { defer close(done); batch(40) }()
	time.Sleep(50 * time.Millisecond)
	srv.Kill()
	<-done
	batch(20)
	waitFor(t, "postern_store_up 0 on both", upOn(0))
	for _, d := range ds {
		if metric(t, d, "postern_store_errors_total") < 1 {
			t.Error("postern_store_errors_total did not count the failures")
		}
		if !strings.Contains(d.stderr.String(), "shared store unavailable") {
			t.Errorf("fallback not logged:\n%s", d.stderr)
		}
	}
	srv.Restart()
	waitFor(t, "postern_store_up 1 on both", upOn(1))
	for _, d := range ds {
		if !strings.Contains(d.stderr.String(), "shared store reachable again") {
			t.Errorf("recovery not logged:\n%s", d.stderr)
		}
	}
	batch(10)
	// Paused beyond store_timeout, then resumed.
	srv.Pause()
	batch(20)
	srv.Resume()
	waitFor(t, "postern_store_up 1 after the pause", upOn(1))
	batch(10)

	// Every reply is a delivery (nothing lost), each id once, each in the
	// ledger once (nothing doubled), each in one audit line.
	ids := map[string]bool{}
	for i, r := range all {
		if r.err != nil || r.status != 200 || !strings.HasPrefix(r.body, "ID: ") {
			t.Fatalf("message %d: %+v", i, r)
		}
		id := strings.TrimSpace(strings.TrimPrefix(r.body, "ID: "))
		if ids[id] {
			t.Fatalf("id %s answered twice", id)
		}
		ids[id] = true
	}
	texts := map[string]int{}
	for _, rq := range p.Requests() {
		var body struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		json.Unmarshal(rq.Body, &body)
		for _, m := range body.Messages {
			texts[m.Content]++
		}
	}
	if len(p.Requests()) != len(all) || len(texts) != len(all) {
		t.Fatalf("ledger: %d requests, %d distinct texts; %d messages answered", len(p.Requests()), len(texts), len(all))
	}
	var lines, local, shared int
	for _, l := range allAuditLines(t, ds, len(all)) {
		if l.Outcome != "delivered" || len(l.IDs) != 1 || !ids[l.IDs[0]] {
			t.Errorf("audit line: %+v", l.Record)
		}
		lines++
		switch l.Store {
		case "local":
			local++
		case "redis":
			shared++
		}
	}
	if lines != len(all) || local == 0 || shared == 0 || local+shared != lines {
		t.Errorf("%d audit lines (%d local, %d redis), want %d with both", lines, local, shared, len(all))
	}
}

// TestClusterRefuseMode: under on_store_error = "refuse", a store that is
// down gets every message 503 ERR: 901 and nothing is sent — whichever
// step meets the store first: per_client (before routing), daily_max, or
// the duplicate claim when no limit is on; /readyz says 503; when the
// store is back, messages are sent again.
func TestClusterRefuseMode(t *testing.T) {
	for step, limits := range map[string]string{
		"per_client": "per_number = \"off\"\ndaily_max = 0",
		"daily_max":  "per_number = \"off\"\nper_client = \"off\"",
		"claim":      "per_number = \"off\"\nper_client = \"off\"\ndaily_max = 0",
	} {
		t.Run(step, func(t *testing.T) { testRefuseMode(t, limits) })
	}
}

func testRefuseMode(t *testing.T, limits string) {
	srv := redistest.Start(t)
	p := oneAPIProvider(t, nil, nil)
	cfg := clusterConfig(t, t.TempDir(), p, srv.URL(), "refuse:", limits,
		"on_store_error = \"refuse\"\nstore_timeout = \"100ms\"")
	d := replicas(t, 1, cfg)[0]
	if r := send(d, "15551234567", "before"); r.status != 200 {
		t.Fatalf("store up: %+v", r)
	}
	srv.Kill()
	for i := range 5 {
		r := send(d, "15551234567", fmt.Sprint("during ", i))
		if r.status != http.StatusServiceUnavailable || r.body != "ERR: 901, Shared store unavailable, message not sent\n" {
			t.Fatalf("store down: %+v %v; stderr:\n%s", r, r.err, d.stderr)
		}
	}
	if n := len(p.Requests()); n != 1 {
		t.Fatalf("provider got %d requests while the store was down, want only the first", n)
	}
	if s := httpStatus("http://" + d.admin + "/readyz"); s != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the store down under refuse: %d, want 503", s)
	}
	srv.Restart()
	waitFor(t, "the store back", func() bool { return metric(t, d, "postern_store_up") == 1 })
	if r := send(d, "15551234567", "after"); r.status != 200 {
		t.Fatalf("store back: %+v", r)
	}
	var refused int
	for _, l := range allAuditLines(t, []*daemon{d}, 7) {
		if l.Status == 503 && l.Reason == "Shared store unavailable, message not sent: [cluster] store unavailable and on_store_error is refuse" {
			refused++
		}
	}
	if refused != 5 {
		t.Errorf("%d refusals audited, want 5", refused)
	}
}
