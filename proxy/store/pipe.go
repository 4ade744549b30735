package store

import (
	"context"
	"slices"
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
//
// The finishes made in the background (FinishLater: after ISE has its
// answer) are sent later: with the next call or batch, whatever it is, in
// the same write, or, when none comes within flushDelay, on their own. A
// message's finish then costs the store no read, write or wake-up of its
// own, even at one connection, where it rides with the next message's
// Admit; the replicas waiting for it hear of it at most flushDelay later.
type pipe struct {
	rdb  *redis.Client
	kick chan struct{} // the queue is the sender's (capacity 1: one owner hands over at a time)
	quit chan struct{} // closed by close: the sender stops
	gone chan struct{} // closed by the sender as it stops

	mu     sync.Mutex // guards what follows
	busy   bool       // a call or a batch is being sent; newcomers queue
	closed bool
	queue  []*call

	flush   *time.Timer // sends the calls left for later when nothing else did within delay
	delay   time.Duration
	spare   []*call      // the owner's (busy): the last batch's slice, reused
	live    []*call      // the owner's: send's calls still wanted, reused
	cmds    []*redis.Cmd // the owner's: send's commands, reused
	batches atomic.Int64 // batches sent (a lone call is not one), for tests
}

// luaScript is a script the pipe runs by its SHA1 (EVALSHA), and by its
// text (EVAL) when the store does not have it (NOSCRIPT: after a restart
// or SCRIPT FLUSH).
type luaScript struct {
	*redis.Script
	sha, src any // boxed once
}

func newLuaScript(src string) *luaScript {
	rs := redis.NewScript(src)
	return &luaScript{Script: rs, sha: rs.Hash(), src: src}
}

// call is one script call.
//
// Its command (argv: EVALSHA, the SHA1, the number of keys, the keys, the
// arguments) is made in the call's own room: the keys and the other
// strings in strs, the numbers in ints, and argv points at them, since
// go-redis writes a *string or *int64 as the value it points at, and a
// pointer goes into an interface without an allocation of its own. A
// message's script call is then one allocation, not one per argument.
type call struct {
	lua      *luaScript
	argv     []any
	deadline time.Time
	state    atomic.Int32 // queued, taken (by the sender or Close), abandoned (by its caller)
	got      any
	err      error
	done     chan struct{} // closed once got and err are set
	notify   func(error)   // a call posted (nobody waits for it): told its outcome instead

	argBuf [18]any
	strs   [6]string
	ints   [9]int64
}

// command starts c's command for lua with n keys: argv holds EVALSHA,
// the SHA1 and n; the caller appends the keys and the arguments.
func (c *call) command(lua *luaScript, n int) {
	c.lua = lua
	c.argv = append(c.argBuf[:0], "evalsha", lua.sha, n)
}

// cmd is the go-redis command for c's argv: EVALSHA, or, with text set
// (the store said NOSCRIPT), EVAL with the script's text.
func (c *call) cmd(ctx context.Context, text bool) *redis.Cmd {
	if text {
		c.argv[0], c.argv[1] = "eval", c.lua.src
	}
	return redis.NewCmd(ctx, c.argv...)
}

// noScript: the store does not have the script (nothing ran).
func noScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}

// runAlone sends c's command on a connection of its own, as Script.Run
// does: by SHA1, then by text if the store lacks the script.
func (p *pipe) runAlone(ctx context.Context, c *call) (any, error) {
	cmd := c.cmd(ctx, false)
	_ = p.rdb.Process(ctx, cmd)
	if noScript(cmd.Err()) {
		cmd = c.cmd(ctx, true)
		_ = p.rdb.Process(ctx, cmd)
	}
	return cmd.Result()
}

const (
	queued int32 = iota
	taken
	abandoned
)

// How run sends a call (see post for the ones sent later).
type when int

const (
	hold  when = iota // at once, holding the pipe: the caller waits for it (Admit)
	aside             // at once, but never holding the pipe (Finish, Release: nobody else waits for them)
)

// flushDelay bounds how long a call posted for later waits for another to
// go with: longer than the gap between one connection's messages, short
// against anything a replica waiting for the reply would notice.
const flushDelay = 2 * time.Millisecond

// newPipe starts a pipe's sender; close stops it. A call left for later
// waits at most flushDelay, and at most half of timeout (store_timeout),
// so that it has time left for its round trip.
func newPipe(rdb *redis.Client, timeout time.Duration) *pipe {
	p := &pipe{rdb: rdb, kick: make(chan struct{}, 1), quit: make(chan struct{}), gone: make(chan struct{}),
		delay: min(flushDelay, timeout/2)}
	p.flush = time.AfterFunc(time.Hour, p.flushNow)
	p.flush.Stop()
	go p.sender()
	return p
}

// run runs c's command (made with command), as w says (hold or aside),
// and returns its reply, or ctx's error when ctx ends first.
//
// A call aside (a claim's reply that a caller waits for) joins a batch
// when one is forming but never holds the pipe: alone, it is sent on a
// connection of its own, so that the next message's Admit is not queued
// behind it. A call held that finds calls left for later takes them along
// in its own write.
func (p *pipe) run(ctx context.Context, c *call, w when) (any, error) {
	c.deadline, _ = ctx.Deadline()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, redis.ErrClosed
	}
	if !p.busy {
		switch {
		case w == aside:
			p.mu.Unlock()
			return p.runAlone(ctx, c)
		case w == hold && len(p.queue) == 0:
			p.busy = true
			p.mu.Unlock()
			got, err := p.runAlone(ctx, c)
			p.handOver()
			return got, err
		case w == hold:
			// The calls left for later go first, in this call's write.
			batch := append(p.queue, c)
			p.queue = p.spare[:0]
			p.busy = true
			p.mu.Unlock()
			p.send(batch)
			clear(batch)
			p.spare = batch[:0]
			p.handOver()
			return c.got, c.err
		}
	}
	c.done = make(chan struct{})
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

// finished hands a call its answer (got and err set).
func (c *call) finished() {
	if c.notify != nil {
		c.notify(c.err)
		return
	}
	if c.done != nil { // nil: its own caller sent it (run's batch)
		close(c.done)
	}
}

// post queues c's command (made with command) for later (with the next
// call or batch, or within delay) and returns at once; notify gets the
// outcome (from the goroutine that sent it), bounded by deadline. It
// returns redis.ErrClosed, without calling notify, once the pipe is
// closed.
func (p *pipe) post(c *call, deadline time.Time, notify func(error)) error {
	c.deadline, c.notify = deadline, notify
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return redis.ErrClosed
	}
	if !p.busy && len(p.queue) == 0 {
		p.flush.Reset(p.delay)
	}
	p.queue = append(p.queue, c)
	return nil
}

// flushNow sends the calls left for later when the pipe is idle: no
// other call came to take them along within flushDelay.
func (p *pipe) flushNow() {
	p.mu.Lock()
	if p.busy || p.closed || len(p.queue) == 0 {
		p.mu.Unlock()
		return
	}
	p.busy = true
	p.mu.Unlock()
	p.kick <- struct{}{}
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
// script's text, in one more pipeline for all such calls. Only the pipe's
// owner (busy) sends.
func (p *pipe) send(batch []*call) {
	live := p.live[:0]
	defer func() { clear(live); p.live = live[:0] }()
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
	cmds := slices.Grow(p.cmds[:0], len(live))[:len(live)]
	defer func() { clear(cmds); p.cmds = cmds[:0] }()
	p.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, c := range live {
			cmds[i] = c.cmd(ctx, false)
			_ = pl.Process(ctx, cmds[i])
		}
		return nil
	})
	var again []int
	for i, cmd := range cmds {
		if noScript(cmd.Err()) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		p.rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, i := range again {
				cmds[i] = live[i].cmd(ctx, true)
				_ = pl.Process(ctx, cmds[i])
			}
			return nil
		})
	}
	for i, c := range live {
		c.got, c.err = cmds[i].Result()
		c.finished()
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
	p.flush.Stop()
	for _, c := range p.queue {
		if c.state.CompareAndSwap(queued, taken) {
			c.err = redis.ErrClosed
			c.finished()
		}
	}
	p.queue = nil
	p.mu.Unlock()
	close(p.quit)
	<-p.gone
}
