package metrics

import (
	"testing"

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
