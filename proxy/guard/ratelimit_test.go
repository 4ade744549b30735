package guard

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/postern/postern/proxy/config"
)

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// TestKeyedLimiterBounds: "5/10m" allows exactly 5 at once, refuses the
// sixth, and gives one more back every 2 minutes, per key.
func TestKeyedLimiterBounds(t *testing.T) {
	k := newKeyedLimiter(config.Rate{Count: 5, Per: 10 * time.Minute}, 100)
	for i := range 5 {
		if !k.allowAll(t0, []string{"A"}) {
			t.Fatalf("message %d refused, want 5 allowed", i+1)
		}
	}
	if k.allowAll(t0, []string{"A"}) {
		t.Fatal("6th message allowed, want refused")
	}
	if !k.allowAll(t0, []string{"B"}) {
		t.Fatal("another number is limited separately")
	}
	if k.allowAll(t0.Add(2*time.Minute-time.Second), []string{"A"}) {
		t.Fatal("allowed before a token refilled")
	}
	if !k.allowAll(t0.Add(2*time.Minute), []string{"A"}) {
		t.Fatal("refused after 2 minutes, want one token back")
	}
	if k.allowAll(t0.Add(2*time.Minute), []string{"A"}) {
		t.Fatal("two allowed after one refill")
	}
}

// TestKeyedLimiterAllOrNothing: a message to several numbers takes a token
// from each only if every number has one.
func TestKeyedLimiterAllOrNothing(t *testing.T) {
	k := newKeyedLimiter(config.Rate{Count: 1, Per: time.Hour}, 100)
	if !k.allowAll(t0, []string{"A"}) {
		t.Fatal("first refused")
	}
	if k.allowAll(t0, []string{"B", "A"}) {
		t.Fatal("A is exhausted; the pair must be refused")
	}
	if !k.allowAll(t0, []string{"B"}) {
		t.Fatal("B lost its token to a refused message")
	}
}

// TestKeyedLimiterMemoryBounded: 100 000 distinct numbers never hold more
// than maxKeys buckets, and the most recent numbers are still limited.
func TestKeyedLimiterMemoryBounded(t *testing.T) {
	const maxKeys = defaultMaxLimiterKeys
	k := newKeyedLimiter(config.Rate{Count: 1, Per: time.Hour}, maxKeys)
	for i := range 100_000 {
		k.allowAll(t0, []string{fmt.Sprintf("1555%07d", i)})
		if n := k.size(); n > maxKeys {
			t.Fatalf("after %d numbers the limiter holds %d buckets, want at most %d", i+1, n, maxKeys)
		}
	}
	if k.allowAll(t0, []string{fmt.Sprintf("1555%07d", 99_999)}) {
		t.Error("the most recent number lost its limit")
	}
}

func TestOffRateAllowsAll(t *testing.T) {
	k := newKeyedLimiter(config.Rate{}, 10)
	for range 1000 {
		if !k.allowAll(t0, []string{"A"}) {
			t.Fatal("an off rate refused")
		}
	}
}

// TestDailyCap: exactly daily_max recipients per UTC day, then a new day.
func TestDailyCap(t *testing.T) {
	d := &dailyCap{max: 10}
	if !d.take(t0, 7) || !d.take(t0, 3) {
		t.Fatal("10 recipients refused under a cap of 10")
	}
	if d.take(t0, 1) {
		t.Fatal("11th recipient allowed")
	}
	d.giveBack(t0, 2)
	if !d.take(t0, 2) || d.take(t0, 1) {
		t.Fatal("given back recipients not reusable exactly")
	}
	midnight := time.Date(2025, 3, 15, 0, 0, 0, 0, time.UTC)
	if d.take(midnight.Add(-time.Nanosecond), 1) {
		t.Fatal("allowed before UTC midnight")
	}
	if !d.take(midnight, 10) {
		t.Fatal("a new UTC day did not reset the cap")
	}
}

func TestRateUnmarshal(t *testing.T) {
	for in, want := range map[string]string{"5/10m": "5/10m0s", "600/1m": "600/1m0s", "off": "off", " 1/24h ": "1/24h0m0s"} {
		var r config.Rate
		if err := r.UnmarshalText([]byte(in)); err != nil || r.String() != want {
			t.Errorf("%q: got %v %v, want %s", in, r, err, want)
		}
	}
	for _, bad := range []string{"", "5", "5/", "/10m", "0/1m", "-1/1m", "5/10", "5/-1m", "five/1m", "on"} {
		var r config.Rate
		if err := r.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted as %v", bad, r)
		}
	}
}

// TestFreshBucketSameAsNewLimiter: a bucket's limiter for a new key, made
// without allocating (a new bucket, or an evicted one reused with whatever
// state it had), behaves as rate.NewLimiter to the bit: the same answers
// and the same tokens after every reservation, cancellation and refill.
func TestFreshBucketSameAsNewLimiter(t *testing.T) {
	rates := []config.Rate{{Count: 5, Per: 10 * time.Minute}, {Count: 1, Per: time.Hour}, {Count: 600, Per: time.Minute},
		{Count: 3, Per: 7 * time.Nanosecond}, {Count: 1000, Per: 1}, {Count: 2, Per: 24 * 365 * time.Hour}, {Count: 7, Per: 1<<63 - 1}}
	starts := []time.Time{t0, time.Unix(0, 0), {}, time.Time{}.Add(time.Hour), time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)}
	for _, r := range rates {
		k := newKeyedLimiter(r, 100)
		for _, start := range starts {
			stale := &bucket{key: "old"}
			k.fresh(stale, start.Add(-time.Minute))
			for range 3 {
				stale.lim.ReserveN(start.Add(-time.Second), 1)
			}
			made, reused := &bucket{key: "a"}, stale
			k.fresh(made, start)
			k.fresh(reused, start)
			want := rate.NewLimiter(k.limit, k.burst)
			now := start
			for step := range 40 {
				n := 1 + step%3
				rw, rm, rr := want.ReserveN(now, n), made.lim.ReserveN(now, n), reused.lim.ReserveN(now, n)
				if rw.OK() != rm.OK() || rw.OK() != rr.OK() || rw.DelayFrom(now) != rm.DelayFrom(now) || rw.DelayFrom(now) != rr.DelayFrom(now) {
					t.Fatalf("rate %v from %v, step %d: reservations differ", r, start, step)
				}
				if step%4 == 1 {
					rw.CancelAt(now)
					rm.CancelAt(now)
					rr.CancelAt(now)
				}
				if w, m, u := want.TokensAt(now), made.lim.TokensAt(now), reused.lim.TokensAt(now); w != m || w != u {
					t.Fatalf("rate %v from %v, step %d: tokens %v, made %v, reused %v", r, start, step, w, m, u)
				}
				now = now.Add(time.Duration(step*step) * time.Second / 3)
			}
		}
	}
}

// TestRefusalGivesBackEveryToken: a message refused for one of its
// numbers takes nothing from any number, even when it names a number more
// than once (its reservations on one limiter are cancelled newest first,
// the only order in which each gives its token back).
func TestRefusalGivesBackEveryToken(t *testing.T) {
	k := newKeyedLimiter(config.Rate{Count: 2, Per: time.Hour}, 100)
	if k.allowAll(t0, []string{"A", "A", "A"}) {
		t.Fatal("three messages to A allowed at once, want refused (2/1h)")
	}
	if k.allowAll(t0, []string{"B", "A", "B", "A", "A"}) {
		t.Fatal("five messages allowed at once, want refused")
	}
	if !k.allowAll(t0, []string{"A", "A"}) {
		t.Fatal("the refused messages kept tokens of A: two to A refused, want allowed")
	}
	if !k.allowAll(t0, []string{"B", "B"}) {
		t.Fatal("the refused message kept tokens of B: two to B refused, want allowed")
	}
}

// TestRefusedMessagesSpendNothing: after any sequence of messages at any
// times, every bucket holds exactly what it would hold had the refused
// messages never been sent — checked against a limiter that only ever saw
// the allowed ones, over random messages naming numbers once or several
// times, with time passing between them.
func TestRefusedMessagesSpendNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keys := []string{"A", "B", "C"}
	for trial := range 2000 {
		k := newKeyedLimiter(config.Rate{Count: 3, Per: time.Hour}, 100)
		ref := newKeyedLimiter(config.Rate{Count: 3, Per: time.Hour}, 100)
		now := t0
		refused := 0
		for range 10 {
			now = now.Add(time.Duration(r.IntN(30)) * time.Minute)
			to := make([]string, 1+r.IntN(4))
			for i := range to {
				to[i] = keys[r.IntN(len(keys))]
			}
			if !k.allowAll(now, to) {
				refused++
				continue
			}
			if !ref.allowAll(now, to) {
				t.Fatalf("trial %d: %v allowed, but refused by the limiter that saw only allowed messages", trial, to)
			}
		}
		for _, key := range keys {
			got, want := k.bucket(key, now).TokensAt(now), ref.bucket(key, now).TokensAt(now)
			if math.Abs(got-want) > 1e-9 {
				t.Fatalf("trial %d (%d refused): %s holds %v tokens, want %v as if the refused messages were never sent", trial, refused, key, got, want)
			}
		}
	}
}
