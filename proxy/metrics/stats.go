package metrics

// Stats are the server's guardrail counters since start: what an operator
// (or a test) watches for attacks and misconfiguration. They are read from
// postern_refusals_total, so they cannot disagree with what is scraped.
type Stats struct {
	AuthFailures uint64 // failed proxy or legacy authentication
	Throttled    uint64 // refused by per_client, per_number or daily_max
	Busy         uint64 // refused because the upstream queue was full
	Blocked      uint64 // refused destinations (country, premium, unknown)
}

// Stats returns a snapshot of the guardrail counters.
func (m *Metrics) Stats() Stats {
	return Stats{
		AuthFailures: m.refusalCount(RefusalAuthFailed),
		Throttled:    m.refusalCount(RefusalRateLimited),
		Busy:         m.refusalCount(RefusalBusy),
		Blocked:      m.refusalCount(RefusalDestination),
	}
}

func (m *Metrics) refusalCount(reason string) uint64 {
	return m.refusals.get(reason).Load()
}
