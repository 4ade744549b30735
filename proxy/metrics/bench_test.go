package metrics

import (
	"testing"
	"time"

	"github.com/postern/postern/proxy/audit"
)

// BenchmarkRecordObserve is the per-message cost of the metrics on the
// request path: one request in flight, its upstream exchange observed and
// its audit record counted, as the pipeline and a sender do, from all Ps
// at once; "client_golang" is the same on the implementation postern used
// before (reference_test.go).
func BenchmarkRecordObserve(b *testing.B) {
	rec := &audit.Record{Mode: "proxy", Route: "route-one", Provider: "clickatell-one", Outcome: "delivered", Status: 200}
	b.Run("postern", func(b *testing.B) {
		m := New(BuildInfo{})
		obs := m.Upstream("route-one", "clickatell-one")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				done := m.Started()
				obs.Observe(42 * time.Millisecond)
				m.Record(rec)
				done()
			}
		})
	})
	b.Run("client_golang", func(b *testing.B) {
		m := newRefMetrics(BuildInfo{})
		obs := m.Upstream("route-one", "clickatell-one")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				done := m.Started()
				obs(42 * time.Millisecond)
				m.Record(rec)
				done()
			}
		})
	})
}

// BenchmarkScrape is one /metrics answer's content.
func BenchmarkScrape(b *testing.B) {
	m := New(BuildInfo{})
	for _, r := range []string{"a", "b", "c"} {
		m.Upstream(r, "p").Observe(time.Millisecond)
		m.Record(&audit.Record{Route: r, Provider: "p", Outcome: "delivered", Status: 200})
	}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = m.expose(buf[:0], nil)
	}
}
