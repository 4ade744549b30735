package metrics

import (
	"maps"
	"math"
	"sync"
	"sync/atomic"
)

// series is one labelled family's series by label values: read without a
// lock or an allocation (an immutable map behind an atomic pointer), copied
// on the rare first use of a new label set (a route, provider and outcome
// seen for the first time). K is a struct of the label values, or a string
// for one label, so that a lookup builds no key on the heap.
type series[K comparable, V any] struct {
	mu    sync.Mutex // serialises the copies
	m     atomic.Pointer[map[K]*V]
	fresh func() *V
}

func newSeries[K comparable, V any](fresh func() *V) *series[K, V] {
	s := &series[K, V]{fresh: fresh}
	s.m.Store(&map[K]*V{})
	return s
}

// get returns k's series, creating it (at zero) on first use.
func (s *series[K, V]) get(k K) *V {
	if v, ok := (*s.m.Load())[k]; ok {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.m.Load()
	if v, ok := old[k]; ok {
		return v
	}
	n := make(map[K]*V, len(old)+1)
	maps.Copy(n, old)
	v := s.fresh()
	n[k] = v
	s.m.Store(&n)
	return v
}

// all is a snapshot of every series.
func (s *series[K, V]) all() map[K]*V { return *s.m.Load() }

// floatValue is a float64 gauge updated atomically.
type floatValue struct{ bits atomic.Uint64 }

func (f *floatValue) set(v float64) { f.bits.Store(math.Float64bits(v)) }
func (f *floatValue) get() float64  { return math.Float64frombits(f.bits.Load()) }

// histogram is one series of a histogram: a count per bucket (not
// cumulative, the last one +Inf) and the sum, each updated atomically, so
// an observation takes no lock. A scrape derives the total count from the
// buckets, so _count always equals the +Inf bucket.
type histogram struct {
	counts [len(latencyBuckets) + 1]atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

// latencyBuckets are the upper bounds of
// postern_upstream_request_duration_seconds, in seconds.
var latencyBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func (h *histogram) observe(v float64) {
	// The first bucket whose bound is >= v (a bound is inclusive, "le");
	// NaN and values above the last bound go to +Inf, as client_golang's.
	i := 0
	for i < len(latencyBuckets) && !(v <= latencyBuckets[i]) {
		i++
	}
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}
