package store

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipe sends concurrent script calls (Admit's, and the finishes that end
// claims) to the store together
// (automatic pipelining, as valkey-go does by default): while one call or
// batch is on its way, the calls that arrive queue, and the next batch
// carries all of them in one write; the store reads them in one read and
// answers in one write. At 50 connections the write and read system calls
// and the store's wake-ups per message drop by up to the batch size. A
// call that finds nothing on its way is sent at once by its own goroutine:
// no timer and no hand-off, so one connection waits no longer than
// without the pipe.
//
// Whoever sends (a lone caller, or the sender goroutine for a batch) owns
// the pipe (busy) until it finds the queue empty; a lone caller that finds
// calls queued behind it hands them to the sender goroutine. Each caller
// waits at most until its own deadline (store_timeout). A queued call whose
// caller gave up is not sent at all; one already being sent may still run
// in a store that stalled, as any call could, and is then ended by
// FinishWhenUp.
type pipe struct {
	rdb  *redis.Client
	kick chan struct{} // the queue is the sender's (capacity 1: one owner hands over at a time)
	quit chan struct{} // closed by close: the sender stops
	gone chan struct{} // closed by the sender as it stops

	mu     sync.Mutex // guards what follows
	busy   bool       // a call or a batch is being sent; newcomers queue
	closed bool
	queue  []*call

	spare   []*call      // the sender's: the last batch's slice, reused
	batches atomic.Int64 // batches sent (a lone call is not one), for tests
}

// call is one queued script call.
type call struct {
	script   *redis.Script
	keys     []string
	args     []any
	deadline time.Time
	state    atomic.Int32 // queued, taken (by the sender or Close), abandoned (by its caller)
	got      any
	err      error
	done     chan struct{} // closed once got and err are set
}

const (
	queued int32 = iota
	taken
	abandoned
)

// newPipe starts a pipe's sender; close stops it.
func newPipe(rdb *redis.Client) *pipe {
	p := &pipe{rdb: rdb, kick: make(chan struct{}, 1), quit: make(chan struct{}), gone: make(chan struct{})}
	go p.sender()
	return p
}

// run runs script with keys and args, alone at once or in the next
// batch, and returns its reply, or ctx's error when ctx ends first.
//
// A call that nobody waits for (aside: the reply that ends a claim,
// published after ISE is answered) joins a batch when one is forming but
// never holds the pipe: alone, it is sent on a connection of its own, so
// that the next message's Admit, at one connection, is not queued behind
// the previous message's reply.
func (p *pipe) run(ctx context.Context, script *redis.Script, keys []string, args []any, aside bool) (any, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, redis.ErrClosed
	}
	if !p.busy {
		if aside {
			p.mu.Unlock()
			return script.Run(ctx, p.rdb, keys, args...).Result()
		}
		p.busy = true
		p.mu.Unlock()
		got, err := script.Run(ctx, p.rdb, keys, args...).Result()
		p.handOver()
		return got, err
	}
	c := &call{script: script, keys: keys, args: args, done: make(chan struct{})}
	c.deadline, _ = ctx.Deadline()
	p.queue = append(p.queue, c)
	p.mu.Unlock()
	select {
	case <-c.done:
		return c.got, c.err
	case <-ctx.Done():
		if !c.state.CompareAndSwap(queued, abandoned) {
			// Taken: its answer is on its way; use it if it is there.
			select {
			case <-c.done:
				return c.got, c.err
			default:
			}
		}
		return nil, ctx.Err()
	}
}

// handOver ends a lone call's ownership: the calls queued meanwhile go to
// the sender goroutine as one batch; with none, the pipe is idle.
func (p *pipe) handOver() {
	p.mu.Lock()
	if len(p.queue) == 0 || p.closed {
		p.busy = false
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.kick <- struct{}{}
}

// sender sends the queue as batches while it owns the pipe, until quit.
func (p *pipe) sender() {
	defer close(p.gone)
	for {
		select {
		case <-p.quit:
			return
		case <-p.kick:
		}
		for {
			p.mu.Lock()
			if len(p.queue) == 0 || p.closed {
				p.busy = false
				p.mu.Unlock()
				break
			}
			batch := p.queue
			p.queue = p.spare[:0]
			p.mu.Unlock()
			p.send(batch)
			clear(batch)
			p.spare = batch[:0]
		}
	}
}

// send sends the calls of batch still wanted as one pipeline, bounded by
// the latest of their deadlines, and hands each its answer. A call that
// finds the script flushed (NOSCRIPT: nothing ran) is sent again with the
// script's text, in one more pipeline for all such calls.
func (p *pipe) send(batch []*call) {
	live := make([]*call, 0, len(batch))
	var deadline time.Time
	for _, c := range batch {
		if c.state.CompareAndSwap(queued, taken) {
			live = append(live, c)
			if c.deadline.After(deadline) {
				deadline = c.deadline
			}
		}
	}
	if len(live) == 0 {
		return
	}
	p.batches.Add(1)
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if !deadline.IsZero() { // callers come through Store.do, with store_timeout
		ctx, cancel = context.WithDeadline(ctx, deadline)
	}
	defer cancel()
	cmds := make([]*redis.Cmd, len(live))
	p.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, c := range live {
			cmds[i] = c.script.EvalSha(ctx, pl, c.keys, c.args...)
		}
		return nil
	})
	var again []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		p.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, i := range again {
				cmds[i] = live[i].script.Eval(ctx, pl, live[i].keys, live[i].args...)
			}
			return nil
		})
	}
	for i, c := range live {
		c.got, c.err = cmds[i].Result()
		close(c.done)
	}
}

// close fails the queued calls (redis.ErrClosed) and every later one,
// and returns once the sender has finished the batch it was sending, if
// any, and stopped.
func (p *pipe) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.gone
		return
	}
	p.closed = true
	for _, c := range p.queue {
		if c.state.CompareAndSwap(queued, taken) {
			c.err = redis.ErrClosed
			close(c.done)
		}
	}
	p.queue = nil
	p.mu.Unlock()
	close(p.quit)
	<-p.gone
}
