package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// storeCollectors are the shared store's metrics ([cluster]). They are
// registered when a store is first used, so a replica without [cluster]
// exports no postern_store_up that could be mistaken for a store down.
type storeCollectors struct {
	once   sync.Once
	up     prometheus.Gauge
	errors prometheus.Counter
}

func (m *Metrics) storeCollectors() *storeCollectors {
	s := &m.store
	s.once.Do(func() {
		s.up = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "postern_store_up",
			Help: "1 while the [cluster] store answers and limits and duplicate suppression are shared; 0 while this replica falls back (on_store_error).",
		})
		s.errors = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "postern_store_errors_total",
			Help: "[cluster] store operations that failed (down, slower than store_timeout, or refused), health probes included.",
		})
		m.reg.MustRegister(s.up, s.errors)
	})
	return s
}

// StoreUp records whether the shared store answers.
func (m *Metrics) StoreUp(up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.storeCollectors().up.Set(v)
}

// StoreError counts one failed store operation.
func (m *Metrics) StoreError() { m.storeCollectors().errors.Inc() }
