package metrics

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/proxy/audit"
)

// TestStatsFollowRefusals: the guardrail counters are the refusal counts,
// and a 4xx on a route without a refusal reason counts as bad_request,
// never as one of them.
func TestStatsFollowRefusals(t *testing.T) {
	m := New(BuildInfo{})
	for _, r := range []string{RefusalAuthFailed, RefusalAuthFailed, RefusalRateLimited, RefusalBusy, RefusalDestination, RefusalNoRoute} {
		m.Record(&audit.Record{Outcome: "refused", Status: 403, Refusal: r})
	}
	m.Record(&audit.Record{Route: "r", Provider: "p", Outcome: "refused", Status: 400})
	want := Stats{AuthFailures: 2, Throttled: 1, Busy: 1, Blocked: 1}
	if got := m.Stats(); got != want {
		t.Errorf("Stats(): got %+v, want %+v", got, want)
	}
	if got := m.refusalCount(RefusalBadRequest); got != 1 {
		t.Errorf("refusalCount(%q): got %d, want 1", RefusalBadRequest, got)
	}
}

// TestConcurrentUpdatesAddUp: counters and the histogram lose nothing when
// many goroutines update them at once (run under -race), and a new label
// set created concurrently with lookups of the others is counted once.
func TestConcurrentUpdatesAddUp(t *testing.T) {
	m := New(BuildInfo{})
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			obs := m.Upstream("r", "p")
			for i := range each {
				done := m.Started()
				obs.Observe(time.Duration(i%3) * time.Second) // 0s, 1s, 2s
				m.Record(&audit.Record{Route: "r", Provider: "p", Outcome: "delivered", Status: 200})
				m.Record(&audit.Record{Route: fmt.Sprintf("route-%d", w), Provider: "p", Outcome: "refused", Status: 403, Refusal: RefusalBusy})
				m.RateLimitHit(LimitDailyMax)
				done()
			}
		})
	}
	wg.Wait()
	if got := m.messages.get(messageKey{"r", "p", "delivered"}).Load(); got != workers*each {
		t.Errorf("delivered = %d, want %d", got, workers*each)
	}
	for w := range workers {
		if got := m.messages.get(messageKey{fmt.Sprintf("route-%d", w), "p", "refused"}).Load(); got != each {
			t.Errorf("route-%d refused = %d, want %d", w, got, each)
		}
	}
	if got := m.Stats().Busy; got != workers*each {
		t.Errorf("Busy = %d, want %d", got, workers*each)
	}
	if got := m.rateLimitHits.get(LimitDailyMax).Load(); got != workers*each {
		t.Errorf("daily_max hits = %d, want %d", got, workers*each)
	}
	if got := m.inFlight.Load(); got != 0 {
		t.Errorf("in flight = %d, want 0", got)
	}
	h := m.upstreamLatency.get(routeKey{"r", "p"})
	var total uint64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	// Of each 3 observations: 0 s in the first bucket, 1 s in le="1",
	// 2 s in le="2.5"; the sum is exact (whole seconds).
	n := uint64(workers * each)
	zeros, ones := uint64(workers*((each+2)/3)), uint64(workers*((each+1)/3))
	if total != n || h.counts[0].Load() != zeros || h.counts[7].Load() != ones || h.counts[8].Load() != n-zeros-ones {
		t.Errorf("histogram counts %v (total %d), want %d in le=0.005, %d in le=1, %d in le=2.5", h.counts[:], total, zeros, ones, n-zeros-ones)
	}
	if sum := math.Float64frombits(h.sum.Load()); sum != float64(ones+2*(n-zeros-ones)) {
		t.Errorf("histogram sum %v, want %v", sum, ones+2*(n-zeros-ones))
	}
}

// TestRequestPathDoesNotAllocate: counting a message and observing its
// exchange allocate nothing once the series exist (a label lookup builds
// no key, an update is atomic).
func TestRequestPathDoesNotAllocate(t *testing.T) {
	m := New(BuildInfo{})
	obs := m.Upstream("route-one", "clickatell-one")
	rec := &audit.Record{Mode: "proxy", Route: "route-one", Provider: "clickatell-one", Outcome: "refused", Status: 429, Refusal: RefusalRateLimited}
	allocs := testing.AllocsPerRun(100, func() {
		done := m.Started()
		obs.Observe(42 * time.Millisecond)
		m.Record(rec)
		m.RateLimitHit(LimitPerNumber)
		done()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per message, want 0", allocs)
	}
}
