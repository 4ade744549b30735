package deadline

import (
	"testing"
	"time"
)

// TestKeepOnlyEverEarlierWithinTheSlack is the rule: the deadline in
// force stands for a new one only when it comes no later and less than
// the slack before it, so a timeout never ends later than it would have,
// and never much earlier.
func TestKeepOnlyEverEarlierWithinTheSlack(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	for _, tc := range []struct {
		name    string
		inForce time.Time
		want    time.Time
		d       time.Duration // the timeout want is for
		keep    bool
	}{
		{"none in force, none wanted", time.Time{}, time.Time{}, 0, true},
		{"none in force yet", time.Time{}, at(10 * time.Second), 10 * time.Second, false},
		{"none wanted any more: cleared", at(time.Second), time.Time{}, 0, false},
		{"the same deadline", at(10 * time.Second), at(10 * time.Second), 10 * time.Second, true},
		{"earlier, within a second", at(9100 * time.Millisecond), at(10 * time.Second), 10 * time.Second, true},
		{"earlier by a second: set", at(9 * time.Second), at(10 * time.Second), 10 * time.Second, false},
		{"later, by a nanosecond: set", at(10*time.Second + 1), at(10 * time.Second), 10 * time.Second, false},
		{"a shutdown's deadline long ago: set", time.Unix(1, 0), at(10 * time.Second), 10 * time.Second, false},
		{"already passed: set", at(-time.Millisecond), at(time.Millisecond), 4 * time.Millisecond, false},
		{"short timeout: within a quarter of it", at(380 * time.Millisecond), at(400 * time.Millisecond), 400 * time.Millisecond, true},
		{"short timeout: past a quarter", at(300 * time.Millisecond), at(400 * time.Millisecond), 400 * time.Millisecond, false},
		{"a long timeout's slack is still a second", at(118 * time.Second), at(120 * time.Second), 120 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Keep(tc.inForce, tc.want, Slack(tc.d)); got != tc.keep {
				t.Errorf("Keep(%v, %v, Slack(%v)) = %v, want %v", tc.inForce, tc.want, tc.d, got, tc.keep)
			}
		})
	}
}

// TestAKeptDeadlineIsAtLeastThreeQuartersAway: whatever is in force, a
// deadline kept for a timeout d from now is no later than wanted and at
// least three quarters of d away.
func TestAKeptDeadlineIsAtLeastThreeQuartersAway(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	for _, d := range []time.Duration{time.Millisecond, 300 * time.Millisecond, 2 * time.Second, 10 * time.Second, 2 * time.Minute} {
		want := now.Add(d)
		for off := -2 * d; off <= 2*d; off += d / 64 {
			inForce := want.Add(off)
			if !Keep(inForce, want, Slack(d)) {
				continue
			}
			if inForce.After(want) || inForce.Sub(now) < d-d/4 {
				t.Errorf("d %v: kept %v, %v from now", d, inForce.Sub(want), inForce.Sub(now))
			}
		}
	}
}
