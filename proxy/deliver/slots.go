package deliver

import (
	"context"
	"time"
)

// slots are max_concurrent_upstream: how many messages may be with
// providers at once. A message waits up to upstream_queue_wait for one.
type slots struct {
	ch   chan struct{}
	wait time.Duration
}

func newSlots(n int, wait time.Duration) *slots {
	return &slots{ch: make(chan struct{}, n), wait: wait}
}

// acquire waits up to the queue wait for a slot. ok is false when none
// came free in time (or ctx ended first).
func (s *slots) acquire(ctx context.Context) (release func(), ok bool) {
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch }, true
	default:
	}
	t := time.NewTimer(s.wait)
	defer t.Stop()
	select {
	case s.ch <- struct{}{}:
		return func() { <-s.ch }, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}
