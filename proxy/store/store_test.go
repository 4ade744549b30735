package store_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postern/postern/internal/redistest"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/proxy/store"
)

func cluster(_ testing.TB, addr, prefix string, timeout time.Duration) config.Cluster {
	u, _ := url.Parse("redis://" + addr + "/0")
	return config.Cluster{Redis: u, KeyPrefix: prefix, OnStoreError: config.OnStoreErrorLocal, StoreTimeout: timeout, DedupWindow: time.Minute}
}

// open makes a store closed when t ends (t nil: the caller closes it).
func open(t testing.TB, c config.Cluster, log *slog.Logger, m *metrics.Metrics) *store.Store {
	st := store.New(c, nil, log, m)
	if t != nil {
		t.Cleanup(func() { st.Close() })
	}
	return st
}

// TestClaimsAcrossStores: two stores on one server are two replicas. While
// one holds a message the other waits and gets its reply; a released claim
// lets the waiter send; a reply kept for dedup_window answers a later
// identical claim; one not kept frees the message at once.
func TestClaimsAcrossStores(t *testing.T) {
	addr := redistest.Shared(t)
	c := cluster(t, addr, redistest.Prefix(t, "claims"), time.Second)
	a, b := open(t, c, nil, nil), open(t, c, nil, nil)
	ctx := context.Background()

	claim, reply, err := a.ClaimOrWait(ctx, "m1", 10*time.Second)
	if claim == nil || reply != nil || err != nil {
		t.Fatalf("first claim: %v %q %v", claim, reply, err)
	}
	got := make(chan []byte, 1)
	go func() {
		_, r, err := b.ClaimOrWait(ctx, "m1", 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	time.Sleep(150 * time.Millisecond) // let b wait (its outcome does not depend on it)
	if err := claim.Finish(ctx, []byte(`{"reply":1}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := <-got; string(r) != `{"reply":1}` {
		t.Fatalf("waiter got %q", r)
	}
	if _, r, _ := b.ClaimOrWait(ctx, "m1", 10*time.Second); string(r) != `{"reply":1}` {
		t.Fatalf("within dedup_window: got %q, want the kept reply", r)
	}

	claim, _, _ = a.ClaimOrWait(ctx, "m2", 10*time.Second)
	claimed := make(chan *store.Claim, 1)
	go func() {
		c, _, err := b.ClaimOrWait(ctx, "m2", 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		claimed <- c
	}()
	time.Sleep(150 * time.Millisecond)
	claim.Release(ctx)
	if c := <-claimed; c == nil {
		t.Fatal("after a release the waiter did not claim")
	} else {
		c.Finish(ctx, []byte("refused"), 0)
	}
	if c, r, err := a.ClaimOrWait(ctx, "m2", 10*time.Second); c == nil || r != nil || err != nil {
		t.Fatalf("a reply not kept must free the message: %v %q %v", c, r, err)
	}
}

// TestConcurrentClaimsOneWinner: of many replicas claiming one message at
// once, exactly one sends and all the others get its reply.
func TestConcurrentClaimsOneWinner(t *testing.T) {
	addr := redistest.Shared(t)
	c := cluster(t, addr, redistest.Prefix(t, "race"), time.Second)
	var stores []*store.Store
	for range 4 {
		stores = append(stores, open(t, c, nil, nil))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners, replies := 0, 0
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			claim, reply, err := stores[i%4].ClaimOrWait(context.Background(), "one", 10*time.Second)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Error(err)
			case claim != nil:
				winners++
				time.Sleep(50 * time.Millisecond)
				claim.Finish(context.Background(), []byte("sent"), time.Minute)
			case string(reply) == "sent":
				replies++
			}
		}()
	}
	wg.Wait()
	if winners != 1 || replies != 39 {
		t.Fatalf("winners %d, replies %d; want 1 and 39", winners, replies)
	}
}

// TestStoreDownAndBack: killed, the store is unavailable at once (no
// wait), postern_store_up is 0, errors are counted and the fallback is
// logged once however many operations fail; restarted, a probe brings it
// back and says so. Paused (SIGSTOP), each operation gives up after
// store_timeout.
func TestStoreDownAndBack(t *testing.T) {
	srv := redistest.Start(t)
	var logs syncBuffer
	m := metrics.New(metrics.BuildInfo{})
	st := open(t, cluster(t, srv.Addr(), "p:", 100*time.Millisecond), slog.New(slog.NewTextHandler(&logs, nil)), m)
	ctx := context.Background()
	limit := func() error {
		a := store.Ask{Now: time.Now(), DailyMax: 10, Numbers: []string{"n"}}
		_, _, err := st.Admit(ctx, &a)
		return err
	}
	if err := limit(); err != nil || !st.Up() {
		t.Fatalf("up: %v", err)
	}
	srv.Kill()
	for range 5 {
		if err := limit(); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("killed: %v, want ErrUnavailable", err)
		}
	}
	if st.Up() {
		t.Fatal("still up after failures")
	}
	if n := strings.Count(logs.String(), "shared store unavailable"); n != 1 {
		t.Errorf("fallback logged %d times, want once:\n%s", n, logs.String())
	}
	srv.Restart()
	store.WaitUntil(t, "recovery", st.Up)
	if err := limit(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if !strings.Contains(logs.String(), "shared store reachable again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}

	srv.Pause()
	start := time.Now()
	err := limit()
	took := time.Since(start)
	srv.Resume()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("paused: %v, want ErrUnavailable", err)
	}
	// Bounded by store_timeout, not by the pause (generous: shared machine).
	if took > 5*time.Second {
		t.Errorf("paused operation took %s", took)
	}
	store.WaitUntil(t, "recovery after pause", st.Up)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLateClaimIsEnded: a claim asked of a paused store fails for the
// caller (which sends on its own), but the store makes it when it
// resumes; FinishWhenUp then ends it with the reply, so an identical
// request at another replica gets that reply instead of waiting for the
// claim to expire.
func TestLateClaimIsEnded(t *testing.T) {
	srv := redistest.Start(t)
	c := cluster(t, srv.Addr(), "late:", 100*time.Millisecond)
	a := open(t, c, nil, nil)
	ctx := context.Background()
	srv.Pause()
	claim, _, err := a.ClaimOrWait(ctx, "m", 30*time.Second)
	if !errors.Is(err, store.ErrUnavailable) || claim == nil {
		t.Fatalf("paused: claim %v, err %v; want ErrUnavailable with the claim asked for", claim, err)
	}
	claim.FinishWhenUp([]byte("sent-alone"), time.Minute, 30*time.Second)
	srv.Resume()
	// Whether or not the stalled store ran the claim, the reply ends up
	// kept under the message's key.
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	store.WaitUntil(t, "the late claim ended with the reply", func() bool {
		v, _ := raw.Get(ctx, "late:msg:m").Result()
		return v == "r:sent-alone"
	})
	c.StoreTimeout = 5 * time.Second
	b := open(t, c, nil, nil)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, reply, err := b.ClaimOrWait(wctx, "m", 30*time.Second); string(reply) != "sent-alone" {
		t.Fatalf("identical request after the stall: reply %q, err %v; want the reply", reply, err)
	}
}
