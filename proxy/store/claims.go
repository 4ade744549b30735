package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A message's key in the store holds "p:<owner>" while a replica sends it
// (the claim, with a TTL of request_timeout plus a margin, so a replica
// that dies mid-send frees it) and "r:<reply>" for dedup_window after it
// finished. Its channel carries the reply (or "x": released, nothing
// sent) to replicas waiting for it.
const (
	pendingPrefix = "p:"
	resultPrefix  = "r:"
	released      = "x"
)

// finishScript ends owner ARGV[1]'s claim on KEYS[1]: it keeps the reply
// ARGV[2] for ARGV[3] ms (0: deletes the key, so the next identical
// request sends again) unless the claim expired and another replica holds
// the key now, and publishes ARGV[2] on channel ARGV[4] to the replicas
// waiting.
var finishScript = newLuaScript(`
local v = redis.call('GET', KEYS[1])
if v == false or v == 'p:' .. ARGV[1] then
  if tonumber(ARGV[3]) > 0 then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  elseif v then
    redis.call('DEL', KEYS[1])
  end
end
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 1
`)

// Claim is this replica's hold on a message while it sends it.
type Claim struct {
	s     *Store
	key   string // msgKey + id
	id    string
	owner string
}

// ClaimOrWait claims the message with key id (hex of the message key) for
// ttl, or, while another replica holds it, waits (until ctx ends) for that
// replica's reply. Exactly one of the results is set:
//
//   - claim: this replica sends; it must call Finish or Release.
//   - reply: an identical message was sent (in flight, or finished within
//     dedup_window); reply is what the sender published.
//   - err: ErrUnavailable (the store failed), or ctx's error when the other
//     replica did not finish in time. With ErrUnavailable, claim may be
//     set too: the claim was asked for and may have been made (a store
//     that stalled runs it when it resumes); see FinishWhenUp.
func (s *Store) ClaimOrWait(ctx context.Context, id string, ttl time.Duration) (claim *Claim, reply []byte, err error) {
	channel := s.doneKey + id
	var sub *redis.PubSub
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	for {
		// The claim alone: admitScript with no limit asked.
		_, c, err := s.Admit(ctx, &Ask{Claim: id, ClaimTTL: ttl})
		switch {
		case err != nil && sub == nil:
			return c.Claim, nil, err
		case err != nil:
			return nil, nil, err
		case c.Claim != nil:
			return c.Claim, nil, nil
		case c.Reply != nil:
			return nil, c.Reply, nil
		}
		// Another replica is sending it: wait for its reply. Subscribe
		// first, then look again (above), so a reply published in between
		// is not missed.
		if sub == nil {
			sub = s.rdb.Subscribe(context.WithoutCancel(ctx), channel)
			if err := s.do(ctx, func(ctx context.Context) error { _, err := sub.Receive(ctx); return err }); err != nil {
				return nil, nil, err
			}
			continue
		}
		msg, err := s.waitMessage(ctx, sub)
		if err != nil {
			return nil, nil, err
		}
		if strings.HasPrefix(msg, resultPrefix) {
			return nil, []byte(strings.TrimPrefix(msg, resultPrefix)), nil
		}
		// Released or a poll tick: look again.
	}
}

// waitMessage waits for the next message on sub, or a poll tick (a
// publish lost to a reconnect still ends the wait: the key is read again),
// or ctx's end.
func (s *Store) waitMessage(ctx context.Context, sub *redis.PubSub) (string, error) {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case m, ok := <-sub.Channel():
		if !ok {
			return "", ErrUnavailable
		}
		return m.Payload, nil
	case <-t.C:
		return "", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Finish publishes reply to the replicas waiting for this message and,
// when keep (dedup_window) > 0, keeps it for identical requests arriving
// within keep; keep 0 frees the message key at once.
func (c *Claim) Finish(ctx context.Context, reply []byte, keep time.Duration) error {
	return c.end(ctx, resultPrefix+string(reply), keep)
}

// FinishLater is Finish in the background, so the reply to ISE does not
// wait for it: a replica asking meanwhile finds the claim still held and
// waits for the publish. It is posted to the pipe, which sends it with the
// store's next call (see pipe), with no goroutine of its own. Close waits
// for it.
func (c *Claim) FinishLater(reply []byte, keep time.Duration) {
	c.endLater(resultPrefix+string(reply), keep)
}

// FinishWhenUp is FinishLater for a claim whose making failed: it waits
// (in the background, at most until the claim would have expired) for the
// store to answer again, then ends the claim with reply (nil: releases
// it, nothing was sent) if the store holds it or nothing, so that an
// identical request is not kept waiting for a claim a stalled store made
// late.
func (c *Claim) FinishWhenUp(reply []byte, keep, ttl time.Duration) {
	s := c.s
	s.background(func() {
		t := time.NewTicker(probeInterval)
		defer t.Stop()
		deadline := time.NewTimer(ttl)
		defer deadline.Stop()
		for !s.Up() {
			select {
			case <-s.stop:
				return
			case <-deadline.C:
				return
			case <-t.C:
			}
		}
		if reply == nil {
			c.Release(context.Background())
			return
		}
		c.Finish(context.Background(), reply, keep)
	})
}

// background runs f in a goroutine that Close waits for, unless the store
// is closed already (then f is dropped: its claim expires by its TTL).
func (s *Store) background(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// Release gives the claim up without a reply: nothing was sent, so the
// next identical request (or one waiting) may send.
func (c *Claim) Release(ctx context.Context) error { return c.end(ctx, released, 0) }

// ReleaseLater is Release in the background, posted as FinishLater is.
func (c *Claim) ReleaseLater() { c.endLater(released, 0) }

func (c *Claim) end(ctx context.Context, payload string, keep time.Duration) error {
	return c.s.do(ctx, func(ctx context.Context) error {
		_, err := c.s.pipe.run(ctx, c.finishCall(payload, keep), aside)
		return err
	})
}

// endLater posts end's script to the pipe. As with do, nothing is sent
// while the store is unavailable (the claim expires by its TTL), the
// store's deadline is store_timeout, and a failure marks the store
// unavailable. Close waits for it.
func (c *Claim) endLater(payload string, keep time.Duration) {
	s := c.s
	if !s.up.Load() {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	err := s.pipe.post(c.finishCall(payload, keep), time.Now().Add(s.cluster.StoreTimeout), func(err error) {
		if err != nil && !errors.Is(err, redis.Nil) {
			s.fail(err)
		}
		s.wg.Done()
	})
	if err != nil {
		s.wg.Done()
	}
}

// finishCall is finishScript's call for the claim: KEYS the claim's key,
// ARGV its owner, payload, keep (ms) and the channel of the replicas
// waiting.
func (c *Claim) finishCall(payload string, keep time.Duration) *call {
	fc := &call{}
	fc.strs = [6]string{c.key, c.owner, payload, c.s.doneKey + c.id}
	fc.ints[0] = keep.Milliseconds()
	fc.command(finishScript, 1)
	fc.argv = append(fc.argv, &fc.strs[0], &fc.strs[1], &fc.strs[2], &fc.ints[0], &fc.strs[3])
	return fc
}

func newOwner() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
