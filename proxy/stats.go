package proxy

import "sync/atomic"

// Stats are the server's guardrail counters since start: what an operator
// (or a metrics exporter) watches for attacks and misconfiguration.
type Stats struct {
	AuthFailures uint64 // failed proxy or legacy authentication
	Throttled    uint64 // refused by per_client, per_number or daily_max
	Busy         uint64 // refused because the upstream queue was full
	Blocked      uint64 // refused destinations (country, premium, unknown)
}

type serverStats struct {
	authFailures, throttled, busy, blocked atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		AuthFailures: s.stats.authFailures.Load(),
		Throttled:    s.stats.throttled.Load(),
		Busy:         s.stats.busy.Load(),
		Blocked:      s.stats.blocked.Load(),
	}
}
