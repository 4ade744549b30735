package deliver

import (
	"context"
	"time"
)

// slots are max_concurrent_upstream: how many messages may be with
// providers at once. A message waits up to upstream_queue_wait for one.
type slots struct {
	ch      chan struct{}
	wait    time.Duration
	release func() // frees a slot; made once, not per message
}

func newSlots(n int, wait time.Duration) *slots {
	s := &slots{ch: make(chan struct{}, n), wait: wait}
	s.release = s.free
	return s
}

// free gives a slot back. It reads s.ch when called, so that a slots whose
// channel Inherit replaced frees the channel it now uses.
func (s *slots) free() { <-s.ch }

// acquire waits up to the queue wait for a slot. ok is false when none
// came free in time (or ctx ended first).
func (s *slots) acquire(ctx context.Context) (release func(), ok bool) {
	select {
	case s.ch <- struct{}{}:
		return s.release, true
	default:
	}
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.ch <- struct{}{}:
		return s.release, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}
