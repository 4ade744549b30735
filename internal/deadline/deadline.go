// Package deadline decides when a busy connection may keep the socket
// deadline it has instead of setting a new one for every request.
//
// Setting a socket deadline reads the clock and takes the runtime's timer
// lock (golang/go#15133), and a connection that carries a request every
// millisecond would set two for each. Kept within a small slack, it sets
// them about once a second. A kept deadline is never later than the one
// wanted, so a timeout never ends an operation later than it would have,
// only up to the slack earlier.
package deadline

import "time"

// Slack is how much earlier than wanted a deadline already in force may
// be and still be kept, for a timeout of d: a quarter of it, at most a
// second. So a kept deadline is at least three quarters of d away.
func Slack(d time.Duration) time.Duration { return min(d/4, time.Second) }

// Keep reports whether the deadline in force (zero: none) may stand for
// want (zero: none): both are none, or it comes no later than want and
// less than slack before it.
func Keep(inForce, want time.Time, slack time.Duration) bool {
	if inForce.IsZero() || want.IsZero() {
		return inForce.IsZero() && want.IsZero()
	}
	return !inForce.After(want) && want.Sub(inForce) < slack
}
