package guard

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/proxy/store"
)

// sharedState returns a State counting in a fresh miniredis.
func sharedState(t *testing.T, g *config.Guards, now func() time.Time) *State {
	t.Helper()
	mr := miniredis.RunT(t)
	u, _ := url.Parse("redis://" + mr.Addr() + "/0")
	st := store.New(config.Cluster{Redis: u, KeyPrefix: "t:", OnStoreError: config.OnStoreErrorLocal,
		StoreTimeout: time.Second}, nil, nil, nil)
	t.Cleanup(func() { st.Close() })
	gs := New(g, now)
	gs.UseStore(st, []byte("key"))
	return gs
}

// TestSharedLimitsAnswerAsLocal: the store's per_number, per_client and
// daily_max (the Lua token bucket and day counter) give exactly the
// answers of this replica's own limiters, for the same requests at the
// same times: random recipients, clients and gaps across two UTC days.
// (A message naming one number twice is left to
// TestSharedLimitsRepeatedNumber: when such a message is refused,
// x/time/rate's cancellation of two reservations on one bucket gives back
// a little less than it took, and the local answers drift by that.)
func TestSharedLimitsAnswerAsLocal(t *testing.T) {
	for _, limits := range []string{
		"per_number = \"3/1m\"\nper_client = \"5/10s\"\ndaily_max = 40\n",
		"per_number = \"1/1h\"\nper_client = \"off\"\ndaily_max = 0\n",
		"per_number = \"off\"\nper_client = \"2/1s\"\ndaily_max = 7\n",
		"per_number = \"7/13m\"\nper_client = \"600/1m\"\ndaily_max = 1000\n",
	} {
		t.Run(limits, func(t *testing.T) {
			g := loadGuards(t, "[limits]\n"+limits)
			now := time.Date(2026, 3, 1, 23, 50, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			local, shared := New(g, clock), sharedState(t, g, clock)
			rng := rand.New(rand.NewPCG(1, 2))
			ctx := context.Background()
			for i := range 600 {
				// Nanosecond gaps: no request lands exactly on a refill boundary,
				// where x/time/rate's float tokens and the store's integer
				// microseconds may round apart.
				now = now.Add(time.Duration(rng.Int64N(4e9)))
				client := fmt.Sprint("10.0.0.", rng.IntN(3))
				lc, sc := local.AllowClient(ctx, client), shared.AllowClient(ctx, client)
				if lc.Limit != sc.Limit || sc.Store != store.Redis && sc.Limit != "" {
					t.Fatalf("step %d AllowClient(%s): local %+v, shared %+v", i, client, lc, sc)
				}
				var to []string
				for _, n := range rng.Perm(6)[:1+rng.IntN(3)] {
					to = append(to, fmt.Sprint("4477009000", n))
				}
				lm, sm := local.AdmitMessage(ctx, to), shared.AdmitMessage(ctx, to)
				if lm.Limit != sm.Limit {
					t.Fatalf("step %d at %s AdmitMessage(%v): local %q, shared %q", i, now.Format(time.TimeOnly), to, lm.Limit, sm.Limit)
				}
				if sm.Store != store.Redis && g.DailyMax+g.PerNumber.Count > 0 {
					t.Fatalf("step %d: store %q, want redis", i, sm.Store)
				}
			}
		})
	}
}

// TestSharedLimitsFallBack: with the store gone, "local" counts on this
// replica's own limiters (audited "local"); "refuse" refuses with the
// store's error and counts nothing.
func TestSharedLimitsFallBack(t *testing.T) {
	g := loadGuards(t, "[limits]\nper_number = \"1/1h\"\ndaily_max = 5\n")
	for _, mode := range []string{config.OnStoreErrorLocal, config.OnStoreErrorRefuse} {
		mr := miniredis.RunT(t)
		u, _ := url.Parse("redis://" + mr.Addr() + "/0")
		st := store.New(config.Cluster{Redis: u, KeyPrefix: "t:", OnStoreError: mode, StoreTimeout: time.Second}, nil, nil, nil)
		gs := New(g, nil)
		gs.UseStore(st, []byte("key"))
		if v := gs.AdmitMessage(context.Background(), []string{"447700900001"}); v.Limit != "" || v.Store != store.Redis {
			t.Fatalf("%s: first message: %+v", mode, v)
		}
		mr.Close()
		v := gs.AdmitMessage(context.Background(), []string{"447700900001"})
		switch mode {
		case config.OnStoreErrorLocal:
			// This replica's own bucket for the number is full: it never counted.
			if v.Limit != "" || v.Store != store.Local || v.Err != nil {
				t.Errorf("local: %+v, want admitted by local counters", v)
			}
			if v := gs.AdmitMessage(context.Background(), []string{"447700900001"}); v.Limit != metrics.LimitPerNumber || v.Store != store.Local {
				t.Errorf("local, again: %+v, want per_number by local counters", v)
			}
		case config.OnStoreErrorRefuse:
			if v.Err == nil || v.Limit != "" {
				t.Errorf("refuse: %+v, want the store's error", v)
			}
		}
		st.Close()
	}
}

// TestSharedLimitsRepeatedNumber: a number named twice in one message
// takes two of its tokens, and a refused message takes none.
func TestSharedLimitsRepeatedNumber(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	gs := sharedState(t, loadGuards(t, "[limits]\nper_number = \"3/1h\"\ndaily_max = 0\n"), func() time.Time { return now })
	ctx := context.Background()
	for i, c := range []struct {
		to   []string
		want string
	}{
		{[]string{"447700900001", "447700900001"}, ""},
		{[]string{"447700900001", "447700900001"}, metrics.LimitPerNumber},
		{[]string{"447700900001"}, ""},
		{[]string{"447700900001"}, metrics.LimitPerNumber},
	} {
		if v := gs.AdmitMessage(ctx, c.to); v.Limit != c.want {
			t.Errorf("step %d AdmitMessage(%v): %+v, want %q", i, c.to, v, c.want)
		}
	}
}

// TestAdmitAllAnswersAsSteps: AdmitAll, per_client deferred to it and
// decided in the store with per_number and daily_max in one script, gives
// the answers of the separate local steps it replaces (AllowClient, then
// AdmitMessage for a request per_client admitted), for the same requests
// at the same times.
func TestAdmitAllAnswersAsSteps(t *testing.T) {
	for _, limits := range []string{
		"per_number = \"3/1m\"\nper_client = \"5/10s\"\ndaily_max = 40\n",
		"per_number = \"off\"\nper_client = \"2/1s\"\ndaily_max = 7\n",
		"per_number = \"1/1h\"\nper_client = \"4/10s\"\ndaily_max = 0\n",
	} {
		t.Run(limits, func(t *testing.T) {
			g := loadGuards(t, "[limits]\n"+limits)
			now := time.Date(2026, 3, 1, 23, 50, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			local, shared := New(g, clock), sharedState(t, g, clock)
			rng := rand.New(rand.NewPCG(3, 4))
			ctx := context.Background()
			for i := range 600 {
				now = now.Add(time.Duration(rng.Int64N(4e9)))
				client := fmt.Sprint("10.0.0.", rng.IntN(3))
				var to []string
				for _, n := range rng.Perm(6)[:1+rng.IntN(3)] {
					to = append(to, fmt.Sprint("4477009000", n))
				}
				want := local.AllowClient(ctx, client).Limit
				if want == "" {
					want = local.AdmitMessage(ctx, to).Limit
				}
				got, claimed := shared.AdmitAll(ctx, client, true, to, "", 0)
				if got.Limit != want || got.Store != store.Redis || got.Err != nil || claimed.Asked {
					t.Fatalf("step %d at %s AdmitAll(%s, %v): %+v, want %q by redis", i, now.Format(time.TimeOnly), client, to, got, want)
				}
			}
		})
	}
}

// TestAdmitAllFallsBack: with the store gone, "local" decides per_client,
// daily_max and per_number on this replica's own counters (the claim
// asked for is handed to deliver with the error); "refuse" refuses with
// the store's error.
func TestAdmitAllFallsBack(t *testing.T) {
	g := loadGuards(t, "[limits]\nper_client = \"1/1h\"\nper_number = \"off\"\ndaily_max = 5\n")
	for _, mode := range []string{config.OnStoreErrorLocal, config.OnStoreErrorRefuse} {
		mr := miniredis.RunT(t)
		u, _ := url.Parse("redis://" + mr.Addr() + "/0")
		st := store.New(config.Cluster{Redis: u, KeyPrefix: "t:", OnStoreError: mode, StoreTimeout: time.Second}, nil, nil, nil)
		gs := New(g, nil)
		gs.UseStore(st, []byte("key"))
		ctx := context.Background()
		if v, c := gs.AdmitAll(ctx, "10.0.0.1", true, []string{"447700900001"}, "m1", time.Minute); v.Limit != "" || v.Store != store.Redis || c.Claim == nil || c.Err != nil {
			t.Fatalf("%s: first message: %+v %+v", mode, v, c)
		}
		mr.Close()
		v, c := gs.AdmitAll(ctx, "10.0.0.1", true, []string{"447700900001"}, "m2", time.Minute)
		switch mode {
		case config.OnStoreErrorLocal:
			// This replica's own per_client bucket is full: it never counted.
			if v.Limit != "" || v.Store != store.Local || v.Err != nil || c.Claim == nil || c.Err == nil {
				t.Errorf("local: %+v %+v, want admitted by local counters, the claim handed on with the error", v, c)
			}
			if v, c := gs.AdmitAll(ctx, "10.0.0.1", true, []string{"447700900002"}, "m3", time.Minute); v.Limit != metrics.LimitPerClient || v.Store != store.Local || c.Claim != nil {
				t.Errorf("local, again: %+v %+v, want per_client by local counters and no claim", v, c)
			}
		case config.OnStoreErrorRefuse:
			if v.Err == nil || v.Limit != "" || c.Claim != nil {
				t.Errorf("refuse: %+v %+v, want the store's error and no claim", v, c)
			}
		}
		st.Close()
	}
}
