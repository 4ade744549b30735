package deliver

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSendContextEndsAsWithTimeout: a SendContext ends when, and as,
// context.WithTimeout(cutOff, timeout) would — at its deadline, at the
// cut-off, at End — whether or not its Done channel was asked for before,
// and a context derived from it ends with it.
func TestSendContextEndsAsWithTimeout(t *testing.T) {
	const short = 50 * time.Millisecond
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		cut     bool // the cut-off ends
		end     bool // End is called
		want    error
	}{
		{"deadline", short, false, false, context.DeadlineExceeded},
		{"cut-off", time.Hour, true, false, context.Canceled},
		{"end", time.Hour, false, true, context.Canceled},
	} {
		for _, early := range []bool{false, true} { // Done asked for before it ends
			name := tc.name + map[bool]string{false: "/done-late", true: "/done-early"}[early]
			t.Run(name, func(t *testing.T) {
				cutOff, cut := context.WithCancel(context.WithValue(context.Background(), testKey{}, "v"))
				defer cut()
				c := NewSendContext(cutOff, tc.timeout)
				defer c.End()
				if d, ok := c.Deadline(); !ok || time.Until(d) > tc.timeout {
					t.Fatalf("deadline %v %v", d, ok)
				}
				if c.Err() != nil || c.Value(testKey{}) != "v" {
					t.Fatalf("fresh: err %v value %v", c.Err(), c.Value(testKey{}))
				}
				var derived context.Context
				if early {
					select {
					case <-c.Done():
						t.Fatal("done before it ended")
					default:
					}
					var stop context.CancelFunc
					derived, stop = context.WithCancel(c)
					defer stop()
				}
				switch {
				case tc.cut:
					cut()
				case tc.end:
					c.End()
				default:
					time.Sleep(2 * short)
				}
				if err := c.Err(); !errors.Is(err, tc.want) {
					t.Errorf("Err %v, want %v", err, tc.want)
				}
				select {
				case <-c.Done():
				case <-time.After(5 * time.Second):
					t.Fatal("Done not closed")
				}
				if err := c.Err(); !errors.Is(err, tc.want) {
					t.Errorf("Err after Done %v, want %v", err, tc.want)
				}
				if derived != nil {
					select {
					case <-derived.Done():
					case <-time.After(5 * time.Second):
						t.Fatal("a derived context did not end")
					}
					if cause := context.Cause(derived); !errors.Is(cause, tc.want) {
						t.Errorf("derived cause %v, want %v", cause, tc.want)
					}
				}
			})
		}
	}
}

type testKey struct{}

// BenchmarkSendContext is a message's sending context, made, asked for its
// deadline and error, and ended, never waited on: against WithTimeout.
//
//	go test -run='^$' -bench=SendContext -benchmem ./proxy/deliver/
func BenchmarkSendContext(b *testing.B) {
	cutOff, cut := context.WithCancel(context.Background())
	defer cut()
	b.Run("SendContext", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := NewSendContext(cutOff, time.Minute)
			c.Deadline()
			_ = c.Err()
			c.End()
		}
	})
	b.Run("WithTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(cutOff, time.Minute)
			ctx.Deadline()
			_ = ctx.Err()
			cancel()
		}
	})
}

// TestSendPlumbingAllocationBudget: what every message's send costs around
// the provider exchange (issue 13): its context, never waited on, one
// allocation; a provider's 2xx reply head read for ExchangePost, none.
func TestSendPlumbingAllocationBudget(t *testing.T) {
	cutOff, cut := context.WithCancel(context.Background())
	defer cut()
	if allocs := testing.AllocsPerRun(100, func() {
		c := NewSendContext(cutOff, time.Minute)
		c.Deadline()
		_ = c.Err()
		c.End()
	}); allocs > 1 {
		t.Errorf("a sending context: %.1f allocations, budget 1", allocs)
	}
	reply := []byte(seedReplies[1].reply)
	if allocs := testing.AllocsPerRun(100, func() {
		if _, ok := parsePlainHead(reply, wantHeader); !ok {
			t.Fatal("not plain")
		}
	}); allocs > 0 {
		t.Errorf("a 2xx reply's head for ExchangePost: %.1f allocations, budget 0", allocs)
	}
}

// TestSendContextUntilKeepsItsDeadline: a send that must be over by a
// deadline already past (the request's request_timeout spent before the
// send) has ended before it starts, with or without its Done channel.
func TestSendContextUntilKeepsItsDeadline(t *testing.T) {
	past := time.Now().Add(-time.Millisecond)
	c := SendContextUntil(context.Background(), past)
	defer c.End()
	if d, ok := c.Deadline(); !ok || !d.Equal(past) {
		t.Errorf("deadline %v %v, want %v", d, ok, past)
	}
	if err := c.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Err %v, want the deadline exceeded", err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Error("Done not closed for a deadline already past")
	}
}

// TestErrAtComparesTheDeadlineWithTheReadingGiven: errAt, the exchange's
// check of its context with the clock reading it already has, tells a
// SendContext's deadline by that reading, and is ctx.Err() for any other
// context.
func TestErrAtComparesTheDeadlineWithTheReadingGiven(t *testing.T) {
	deadline := time.Now().Add(time.Hour)
	sc := SendContextUntil(context.Background(), deadline)
	defer sc.End()
	if err := errAt(sc, deadline.Add(-time.Nanosecond)); err != nil {
		t.Errorf("before the deadline: %v, want nil", err)
	}
	if err := errAt(sc, deadline); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("at the deadline: %v, want DeadlineExceeded", err)
	}
	if err := sc.Err(); err != nil {
		t.Errorf("Err an hour before the deadline: %v", err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := errAt(cancelled, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Errorf("another context: %v, want its Err", err)
	}
	ended := SendContextUntil(context.Background(), deadline)
	ended.End()
	if err := errAt(ended, deadline.Add(-time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("ended: %v, want Canceled", err)
	}
}
