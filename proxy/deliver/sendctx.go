package deliver

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// SendContext is the context a message is sent under: it ends at its
// deadline, when its cut-off ends (the end of the shutdown grace period)
// or at End, as context.WithTimeout(cutOff, timeout) would. It differs in
// cost only: the Done channel — and the timer and the registration with
// the cut-off a channel needs — is made when something first asks for it
// (a wait for an upstream slot, for a joined flight, a retry's pause, a
// dial). Most messages never wait, and the HTTP/1.1 pool watches the
// deadline and the cut-off per connection (NewFastClient), so they send
// without any: a fifth of the bytes a message allocated, and two locks of
// the cut-off's taken by every message.
type SendContext struct {
	cutOff   context.Context
	deadline time.Time
	ended    atomic.Bool

	mu   sync.Mutex                  // makes lazy once
	lazy atomic.Pointer[lazyContext] // made on first Done; read without the lock
}

// lazyContext is the context a SendContext's Done channel comes from.
type lazyContext struct {
	ctx    context.Context // WithDeadline(cutOff, deadline)
	cancel context.CancelFunc
}

// NewSendContext returns the context of a send that may take timeout and
// is cut short when cutOff ends. Call End when the send is over.
func NewSendContext(cutOff context.Context, timeout time.Duration) *SendContext {
	return SendContextUntil(cutOff, time.Now().Add(timeout))
}

// SendContextUntil is NewSendContext for a send that must be over by
// deadline: the HTTP pipeline's, request_timeout after the request came.
func SendContextUntil(cutOff context.Context, deadline time.Time) *SendContext {
	return &SendContext{cutOff: cutOff, deadline: deadline}
}

// End ends the context, as a CancelFunc does.
func (c *SendContext) End() {
	c.ended.Store(true)
	c.mu.Lock() // a Done being made now sees ended, or is cancelled here
	l := c.lazy.Load()
	c.mu.Unlock()
	if l != nil {
		l.cancel()
	}
}

// Deadline is when the send must be over.
func (c *SendContext) Deadline() (time.Time, bool) { return c.deadline, true }

// Done is closed when the context ends.
func (c *SendContext) Done() <-chan struct{} { return c.made().Done() }

// made is the context Done's channel is made with, made on first use.
func (c *SendContext) made() context.Context {
	if l := c.lazy.Load(); l != nil {
		return l.ctx
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.lazy.Load(); l != nil {
		return l.ctx
	}
	ctx, cancel := context.WithDeadline(c.cutOff, c.deadline)
	if c.ended.Load() {
		cancel()
	}
	c.lazy.Store(&lazyContext{ctx: ctx, cancel: cancel})
	return ctx
}

// Err is nil until the context ends, then why: context.Canceled (End,
// the cut-off) or context.DeadlineExceeded.
func (c *SendContext) Err() error { return c.errAt(time.Time{}) }

// errAt is Err with the deadline compared to now, a reading the caller
// already has (the zero time: read the clock).
func (c *SendContext) errAt(now time.Time) error {
	if l := c.lazy.Load(); l != nil {
		return l.ctx.Err()
	}
	if err := c.cutOff.Err(); err != nil {
		return err
	}
	if c.ended.Load() {
		return context.Canceled
	}
	if now.IsZero() {
		now = time.Now()
	}
	if !now.Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// errAt is ctx.Err(), without another reading of the clock when ctx is a
// SendContext (whose Err reads it for the deadline).
func errAt(ctx context.Context, now time.Time) error {
	if sc, ok := ctx.(*SendContext); ok {
		return sc.errAt(now)
	}
	return ctx.Err()
}

// Value is the cut-off's value for key, or, once Done's channel is made,
// the value of the context that makes it: contexts derived from this one
// then find it as their parent (and context.Cause its cause).
func (c *SendContext) Value(key any) any {
	if l := c.lazy.Load(); l != nil {
		return l.ctx.Value(key)
	}
	return c.cutOff.Value(key)
}
