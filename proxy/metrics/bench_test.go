package metrics

import (
	"testing"
	"time"

	"github.com/postern/postern/proxy/audit"
)

// BenchmarkRecordObserve is the per-message cost of the metrics on the
// request path: one delivered message counted and its upstream exchange
// observed, as the pipeline and a sender do, from all Ps at once.
func BenchmarkRecordObserve(b *testing.B) {
	m := New(BuildInfo{})
	obs := m.Upstream("route-one", "clickatell-one")
	rec := &audit.Record{Mode: "proxy", Route: "route-one", Provider: "clickatell-one", Outcome: "delivered", Status: 200}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			done := m.Started()
			obs.Observe(42 * time.Millisecond)
			m.Record(rec)
			done()
		}
	})
}
