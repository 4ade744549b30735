package guard

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/postern/postern/proxy/config"
)

// defaultMaxLimiterKeys bounds how many numbers or clients a keyedLimiter
// remembers. A flood of distinct numbers evicts the least recently used
// buckets instead of growing memory; daily_max still bounds what such a
// flood can send.
const defaultMaxLimiterKeys = 10_000

// keyedLimiter is one token bucket per key (a destination number, a client
// address), with least-recently-used eviction. Time is always passed in, so
// tests drive it with their own clock.
type keyedLimiter struct {
	limit   rate.Limit
	burst   int
	per     time.Duration // the rate's window, for fresh
	maxKeys int

	mu      sync.Mutex
	entries map[string]*list.Element // of *bucket
	lru     list.List                // front = most recently used
}

type bucket struct {
	key string
	lim *rate.Limiter // &own, or one of its own (see fresh)
	own rate.Limiter
}

// newKeyedLimiter returns nil for an "off" rate; a nil limiter allows all.
func newKeyedLimiter(r config.Rate, maxKeys int) *keyedLimiter {
	if r.Off() {
		return nil
	}
	return &keyedLimiter{
		limit:   rate.Every(r.Per / time.Duration(r.Count)),
		burst:   r.Count,
		per:     r.Per,
		maxKeys: maxKeys,
		entries: map[string]*list.Element{},
	}
}

// allowAll takes one token from each key's bucket at now, or none at all:
// a message to several numbers is refused whole if any of them is over its
// limit, and the others keep their tokens. It checks every bucket before
// taking from any, rather than reserving and cancelling: x/time/rate's
// CancelAt gives back less than a reservation took once time has passed
// since the bucket's last event, so a refused message would have spent
// tokens (TestRefusedMessagesSpendNothing).
func (k *keyedLimiter) allowAll(now time.Time, keys []string) bool {
	if k == nil {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	// What each distinct key needs (a message may name a number twice),
	// on the stack for a message to a few numbers.
	type need struct {
		key string
		lim *rate.Limiter
		n   int
	}
	var buf [4]need
	needs := buf[:0]
next:
	for _, key := range keys {
		for i := range needs {
			if needs[i].key == key {
				needs[i].n++
				continue next
			}
		}
		needs = append(needs, need{key: key, lim: k.bucket(key, now), n: 1})
	}
	for _, nd := range needs {
		if nd.lim.TokensAt(now) < float64(nd.n) {
			return false
		}
	}
	for _, nd := range needs {
		nd.lim.AllowN(now, nd.n) // checked above, under k.mu
	}
	return true
}

// bucket returns key's limiter for a reservation at now, creating it (and
// evicting the least recently used one when full) as needed. k.mu is held.
func (k *keyedLimiter) bucket(key string, now time.Time) *rate.Limiter {
	if e, ok := k.entries[key]; ok {
		k.lru.MoveToFront(e)
		return e.Value.(*bucket).lim
	}
	for len(k.entries) > k.maxKeys {
		oldest := k.lru.Back()
		k.lru.Remove(oldest)
		delete(k.entries, oldest.Value.(*bucket).key)
	}
	if len(k.entries) == k.maxKeys {
		// Full: the least recently used key's list element and bucket
		// take the new key, rather than being thrown away for new ones.
		oldest := k.lru.Back()
		b := oldest.Value.(*bucket)
		delete(k.entries, b.key)
		b.key = key
		k.fresh(b, now)
		k.lru.MoveToFront(oldest)
		k.entries[key] = oldest
		return b.lim
	}
	b := &bucket{key: key}
	k.fresh(b, now)
	k.entries[key] = k.lru.PushFront(b)
	return b.lim
}

// fresh gives b a full bucket for a new key whose first reservation is at
// now: exactly rate.NewLimiter(k.limit, k.burst), without allocating one
// when it can. b's own limiter is reset to "last updated at the zero
// time"; at now, more than four windows later, it has refilled to the
// burst and is capped there — the state of a new limiter, to the bit, and
// every field a reservation reads is then written by it. A clock so close
// to the zero time, or a window so long, that this does not hold gets a
// new limiter (TestFreshBucketSameAsNewLimiter).
func (k *keyedLimiter) fresh(b *bucket, now time.Time) {
	if k.limit == rate.Inf || now.Sub(time.Time{})/4 < k.per {
		b.lim = rate.NewLimiter(k.limit, k.burst)
		return
	}
	b.own.SetLimitAt(time.Time{}, k.limit)
	b.own.SetBurstAt(time.Time{}, k.burst)
	b.lim = &b.own
}

// size is how many keys are remembered.
func (k *keyedLimiter) size() int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.entries)
}

// dailyCap counts recipients per UTC calendar day: the bill an operator
// budgets for is per day, and a fixed day is what an auditor can check
// against the provider's invoice.
type dailyCap struct {
	max int // 0 = off

	mu   sync.Mutex
	day  int // the UTC calendar day counted, as dayKey
	used int
}

// dayKey names now's UTC calendar day (20250314), without formatting it.
func dayKey(now time.Time) int {
	y, m, d := now.UTC().Date()
	return y*10000 + int(m)*100 + d
}

// take counts n recipients at now, or refuses them all if that would pass
// the cap.
func (d *dailyCap) take(now time.Time, n int) bool {
	if d.max == 0 {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if day := dayKey(now); day != d.day {
		d.day, d.used = day, 0
	}
	if d.used+n > d.max {
		return false
	}
	d.used += n
	return true
}

// giveBack returns n recipients that were counted but not sent.
func (d *dailyCap) giveBack(now time.Time, n int) {
	if d.max == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if dayKey(now) == d.day {
		d.used = max(0, d.used-n)
	}
}
