package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postern/postern/internal/redistest"
	"github.com/postern/postern/proxy/config"
)

// These tests look inside the pipe (how many calls are queued, how many
// batches went out) to make batches happen for certain: the store is
// paused (SIGSTOP) while one call is on its way and the others queue.

func pipeStore(t *testing.T, addr, prefix string, timeout time.Duration) *Store {
	t.Helper()
	u, _ := url.Parse("redis://" + addr + "/0")
	s := New(config.Cluster{Redis: u, KeyPrefix: prefix, OnStoreError: config.OnStoreErrorLocal,
		StoreTimeout: timeout, DedupWindow: time.Minute}, nil, nil, nil)
	t.Cleanup(func() { s.Close() })
	return s
}

func (p *pipe) state() (busy bool, queued int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy, len(p.queue)
}

// WaitUntil is waitUntil for the package's external tests (store_test).
var WaitUntil = waitUntil

// waitUntil polls cond until it holds, failing the test after 15 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type admitted struct {
	verdict int
	claimed Claimed
	err     error
}

// together runs n Admits at once (released together), ask(i) for the i-th,
// and returns their results in order.
func together(s *Store, n int, ask func(i int) Ask) []admitted {
	out := make([]admitted, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := ask(i)
			<-start
			out[i].verdict, out[i].claimed, out[i].err = s.Admit(context.Background(), &a)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func count(t *testing.T, res []admitted) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, r := range res {
		switch {
		case r.err != nil:
			t.Fatalf("admit failed: %v", r.err)
		case r.verdict == OverClient:
			n["client"]++
		case r.verdict == OverDaily:
			n["daily"]++
		case r.verdict == OverRate:
			n["number"]++
		case r.claimed.Claim != nil:
			n["claimed"]++
		case r.claimed.Held:
			n["held"]++
		default:
			n["admitted"]++
		}
	}
	return n
}

// TestPipeConcurrentAdmitsExact: 200 Admits at once, sent in whatever
// batches form, give exactly the answers the same Admits one after
// another would: each limit admits exactly its budget, and of identical
// messages exactly one claims.
func TestPipeConcurrentAdmitsExact(t *testing.T) {
	addr := redistest.Shared(t)
	prefix := redistest.Prefix(t, "pipe") // a run of its own, on a long-lived server too
	s := pipeStore(t, addr, prefix, 10*time.Second)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hour := func(n int) config.Rate { return config.Rate{Count: n, Per: time.Hour} }
	for _, tc := range []struct {
		name string
		ask  func(i int) Ask
		want map[string]int
	}{
		{"per_client", func(i int) Ask {
			return Ask{Now: now, Client: "c" + strconv.Itoa(i%4), ClientRate: hour(10), DailyMax: 1000,
				Numbers: []string{"a" + strconv.Itoa(i)}, Claim: "a" + strconv.Itoa(i), ClaimTTL: time.Minute}
		}, map[string]int{"claimed": 40, "client": 160}},
		{"daily_max", func(i int) Ask {
			return Ask{Now: now.Add(24 * time.Hour), DailyMax: 100, Numbers: []string{"b" + strconv.Itoa(i)}}
		}, map[string]int{"admitted": 100, "daily": 100}},
		{"per_number", func(i int) Ask {
			return Ask{Now: now, NumberRate: hour(3), Numbers: []string{"c" + strconv.Itoa(i%20)}}
		}, map[string]int{"admitted": 60, "number": 140}},
		{"claims", func(i int) Ask {
			return Ask{Now: now, Claim: "d" + strconv.Itoa(i%10), ClaimTTL: time.Minute}
		}, map[string]int{"claimed": 10, "held": 190}},
	} {
		got := count(t, together(s, 200, tc.ask))
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	raw := redis.NewClient(&redis.Options{Addr: addr})
	defer raw.Close()
	if v, _ := raw.Get(context.Background(), prefix+"daily:2026-03-01").Result(); v != "40" {
		t.Errorf("daily counter %q, want 40 (the messages per_client admitted)", v)
	}
	if busy, q := s.pipe.state(); busy || q != 0 {
		t.Errorf("pipe left busy %v with %d queued", busy, q)
	}
	t.Logf("%d batches", s.pipe.batches.Load())
}

// pausedBatch pauses srv while one Admit is on its way, queues n more
// behind it, and resumes srv: the n go as one batch.
func pausedBatch(t *testing.T, s *Store, srv *redistest.Server, n int, ask func(i int) Ask) []admitted {
	t.Helper()
	srv.Pause()
	out := make([]admitted, n+1)
	var wg sync.WaitGroup
	admit := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := ask(i)
			out[i].verdict, out[i].claimed, out[i].err = s.Admit(context.Background(), &a)
		}()
	}
	admit(0)
	waitUntil(t, "the first call on its way", func() bool { busy, _ := s.pipe.state(); return busy })
	for i := 1; i <= n; i++ {
		admit(i)
	}
	waitUntil(t, "the others queued", func() bool { _, q := s.pipe.state(); return q == n })
	srv.Resume()
	wg.Wait()
	return out
}

// TestPipeBatches: calls that arrive while one is on its way go out as
// one batch, each with its own answer.
func TestPipeBatches(t *testing.T) {
	srv := redistest.Start(t)
	s := pipeStore(t, srv.Addr(), "batch:", 30*time.Second)
	now := time.Now()
	res := pausedBatch(t, s, srv, 49, func(i int) Ask {
		return Ask{Now: now, DailyMax: 1000, Numbers: []string{"n"}, Claim: "m" + strconv.Itoa(i%25), ClaimTTL: time.Minute}
	})
	if got := fmt.Sprint(count(t, res)); got != fmt.Sprint(map[string]int{"claimed": 25, "held": 25}) {
		t.Errorf("answers %s; want 25 claimed, 25 held", got)
	}
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	if v, _ := raw.Get(context.Background(), s.dailyKey(now)).Result(); v != "50" {
		t.Errorf("daily counter %q, want 50", v)
	}
	if b := s.pipe.batches.Load(); b != 1 {
		t.Errorf("%d batches, want 1 (49 calls queued behind the first)", b)
	}
}

// TestPipeNoScript: after SCRIPT FLUSH a lone call (pausedBatch's first,
// whose fallback loads the script again) and a batch sent first (send)
// find the script gone (NOSCRIPT, nothing ran) and send it again: every
// call is answered, counted once.
func TestPipeNoScript(t *testing.T) {
	srv := redistest.Start(t)
	s := pipeStore(t, srv.Addr(), "noscript:", 30*time.Second)
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	ctx := context.Background()
	now := time.Now()
	flush := func() {
		if err := raw.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	daily := func(want int) {
		t.Helper()
		if v, _ := raw.Get(ctx, s.dailyKey(now)).Result(); v != strconv.Itoa(want) {
			t.Fatalf("daily counter %q, want %d (each call counted once)", v, want)
		}
	}
	flush()
	ask := func(i int) Ask { return Ask{Now: now, DailyMax: 1000, Numbers: []string{"n" + strconv.Itoa(i)}} }
	if got := count(t, pausedBatch(t, s, srv, 19, ask)); got["admitted"] != 20 || len(got) != 1 {
		t.Fatalf("after SCRIPT FLUSH: %v, want 20 admitted", got)
	}
	daily(20)

	// A batch as the sender sends it (daily_max alone: admitScript's
	// arguments as Admit passes them), the script flushed just before.
	flush()
	batch := make([]*call, 20)
	for i := range batch {
		c := &call{deadline: time.Now().Add(30 * time.Second), done: make(chan struct{})}
		c.strs[0] = s.dailyKey(now)
		c.admit(c.strs[:2], [9]int64{now.UnixMicro(), 0, 0, 1000, 1, int64(dailyKeyTTL / time.Second), 0, 0, 0})
		batch[i] = c
	}
	// send is the pipe's owner's: take the pipe as a lone caller would.
	waitUntil(t, "the pipe idle", func() bool {
		s.pipe.mu.Lock()
		defer s.pipe.mu.Unlock()
		if s.pipe.busy {
			return false
		}
		s.pipe.busy = true
		return true
	})
	s.pipe.send(batch)
	s.pipe.handOver()
	for i, c := range batch {
		<-c.done
		if c.err != nil || c.got != any("c") {
			t.Fatalf("batched call %d after SCRIPT FLUSH: %q, %v", i, c.got, c.err)
		}
	}
	daily(40)
}

// TestPipeCallerTimeout: with the store paused, every caller, the one on
// its way and the queued ones, gives up at its own store_timeout with
// ErrUnavailable and the claim it asked for; queued calls whose callers
// gave up are never sent. Once the store resumes, FinishWhenUp ends every
// claim the store made late: none is left held.
func TestPipeCallerTimeout(t *testing.T) {
	srv := redistest.Start(t)
	s := pipeStore(t, srv.Addr(), "stall:", 200*time.Millisecond)
	srv.Pause()
	const n = 21
	res := make([]admitted, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := Ask{Now: time.Now(), DailyMax: 1000, Numbers: []string{"n"}, Claim: "m" + strconv.Itoa(i), ClaimTTL: time.Minute}
			res[i].verdict, res[i].claimed, res[i].err = s.Admit(context.Background(), &a)
		}()
		if i == 0 {
			waitUntil(t, "the first call on its way", func() bool { busy, _ := s.pipe.state(); return busy })
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second): // store_timeout is 200ms
		srv.Resume()
		t.Fatal("callers still waiting 15s after a 200ms store_timeout")
	}
	for i, r := range res {
		if !errors.Is(r.err, ErrUnavailable) || r.claimed.Claim == nil || !errors.Is(r.claimed.Err, ErrUnavailable) {
			t.Fatalf("caller %d: verdict %d, %+v, %v; want ErrUnavailable with its claim", i, r.verdict, r.claimed, r.err)
		}
		r.claimed.Claim.FinishWhenUp([]byte("sent-alone"), time.Minute, time.Minute)
	}
	srv.Resume()
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	waitUntil(t, "every late claim ended", func() bool {
		for i := range n {
			v, err := raw.Get(context.Background(), "stall:msg:m"+strconv.Itoa(i)).Result()
			if err != nil && !errors.Is(err, redis.Nil) || strings.HasPrefix(v, pendingPrefix) {
				return false
			}
		}
		return true
	})
	waitUntil(t, "the store up again", s.Up)
	a := Ask{Now: time.Now(), DailyMax: 1000, Numbers: []string{"n"}}
	if v, _, err := s.Admit(context.Background(), &a); err != nil || v != Admitted {
		t.Fatalf("after the stall: verdict %d, %v", v, err)
	}
}

// TestPipeCloseWhileQueued: Close fails the queued calls at once (not at
// their store_timeout), fails later calls, and leaves no goroutine behind.
func TestPipeCloseWhileQueued(t *testing.T) {
	srv := redistest.Start(t)
	before := runtime.NumGoroutine()
	u, _ := url.Parse("redis://" + srv.Addr() + "/0")
	s := New(config.Cluster{Redis: u, KeyPrefix: "close:", OnStoreError: config.OnStoreErrorLocal,
		StoreTimeout: time.Minute, DedupWindow: time.Minute}, nil, nil, nil)
	srv.Pause()
	const n = 20
	errs := make(chan error, n+1)
	admit := func() {
		go func() {
			a := Ask{Now: time.Now(), DailyMax: 1000, Numbers: []string{"n"}}
			_, _, err := s.Admit(context.Background(), &a)
			errs <- err
		}()
	}
	admit()
	waitUntil(t, "the first call on its way", func() bool { busy, _ := s.pipe.state(); return busy })
	for range n {
		admit()
	}
	waitUntil(t, "the others queued", func() bool { _, q := s.pipe.state(); return q == n })
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	for i := range n + 1 { // the queued ones, then the one on its way when Close closes its connection
		select {
		case err := <-errs:
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("call %d after Close: %v, want ErrUnavailable", i, err)
			}
		case <-time.After(15 * time.Second): // store_timeout is a minute
			srv.Resume()
			t.Fatalf("%d calls still waiting 15s after Close", n+1-i)
		}
	}
	<-closed
	srv.Resume()
	a := Ask{Now: time.Now(), DailyMax: 1000, Numbers: []string{"n"}}
	if _, _, err := s.Admit(context.Background(), &a); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Admit after Close: %v, want ErrUnavailable", err)
	}
	waitUntil(t, "no goroutine left behind", func() bool { return runtime.NumGoroutine() <= before })
}

// TestPipeFinishLaterRidesAlong: a finish made in the background waits
// for the store's next call and goes in its write (one batch, nothing
// sent alone); on its own, it goes within the pipe's delay, and a replica
// waiting for the message hears the reply.
func TestPipeFinishLaterRidesAlong(t *testing.T) {
	addr := redistest.Shared(t)
	prefix := redistest.Prefix(t, "later")
	s := pipeStore(t, addr, prefix, 10*time.Second)
	raw := redis.NewClient(&redis.Options{Addr: addr})
	defer raw.Close()
	ctx := context.Background()
	held := func(id string) string { v, _ := raw.Get(ctx, prefix+"msg:"+id).Result(); return v }
	claim := func(id string) *Claim {
		t.Helper()
		a := Ask{Now: time.Now(), Claim: id, ClaimTTL: time.Minute}
		_, c, err := s.Admit(ctx, &a)
		if err != nil || c.Claim == nil {
			t.Fatalf("claim %s: %+v, %v", id, c, err)
		}
		return c.Claim
	}

	setDelay := func(d time.Duration) { s.pipe.mu.Lock(); s.pipe.delay = d; s.pipe.mu.Unlock() }
	setDelay(time.Hour) // only another call sends it
	first := claim("m1")
	first.FinishLater([]byte("sent"), time.Minute)
	waitUntil(t, "the finish queued", func() bool { busy, q := s.pipe.state(); return !busy && q == 1 })
	if v := held("m1"); v[:2] != pendingPrefix {
		t.Fatalf("finish sent before another call: %q", v)
	}
	batches := s.pipe.batches.Load()
	a := Ask{Now: time.Now(), DailyMax: 1000, Numbers: []string{"n"}}
	if v, _, err := s.Admit(ctx, &a); err != nil || v != Admitted {
		t.Fatalf("next admit: %d, %v", v, err)
	}
	if v := held("m1"); v != "r:sent" {
		t.Fatalf("after the next call the message holds %q, want the reply", v)
	}
	if b := s.pipe.batches.Load(); b != batches+1 {
		t.Errorf("%d batches for the finish and the admit, want one", b-batches)
	}

	setDelay(flushDelay)
	second := claim("m2")
	b := pipeStore(t, addr, prefix, 10*time.Second)
	got := make(chan []byte, 1)
	go func() {
		_, reply, err := b.ClaimOrWait(ctx, "m2", time.Minute)
		if err != nil {
			t.Error(err)
		}
		got <- reply
	}()
	waitUntil(t, "the other replica waiting", func() bool {
		n, _ := raw.PubSubNumSub(ctx, prefix+"done:m2").Result()
		return n[prefix+"done:m2"] == 1
	})
	second.FinishLater([]byte("sent-alone"), time.Minute)
	if r := <-got; string(r) != "sent-alone" {
		t.Fatalf("the waiting replica got %q", r)
	}
	waitUntil(t, "the reply kept", func() bool { return held("m2") == "r:sent-alone" })
}
