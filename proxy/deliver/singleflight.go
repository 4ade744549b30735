package deliver

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"sync"

	"github.com/postern/postern/internal/macpool"
	"github.com/postern/postern/rewrite"
)

// Key identifies a message for idempotency: an HMAC over the route
// and everything that decides what the guest receives (recipients, text,
// sender, the legacy options including ISE's own climsgid). Identical
// requests get the same key; the text itself is never kept. The HMAC key
// is derived from the config's secrets, so the same config (a restart, an
// HA peer) derives the same ids while nobody without those secrets can test
// guesses of a short password against an id in the audit log.
type Key [sha256.Size]byte

func keyFor(macs *macpool.Pool, route string, m rewrite.Message) Key {
	// The fields are framed into one pooled buffer and written once: a
	// Write per field through the hash interface allocated each field's
	// bytes, twenty-odd per message.
	return macs.Sum(func(b []byte) []byte {
		b = appendField(b, route)
		b = appendNumField(b, len(m.To))
		for _, to := range m.To {
			b = appendField(b, to)
		}
		b = appendField(b, m.Text)
		b = appendField(b, m.From)
		o := m.Options
		b = appendField(b, strconv.FormatBool(o.MO))
		b = appendNumField(b, o.Concat)
		b = appendField(b, o.ClientMessageID)
		b = appendNumField(b, o.Callback)
		return appendField(b, strconv.FormatBool(o.DeliveryAck))
	})
}

// appendField frames s by its length, so that no two messages' fields
// run together into the same bytes.
func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendNumField is appendField of n in decimal.
func appendNumField(b []byte, n int) []byte {
	var d [20]byte
	num := strconv.AppendInt(d[:0], int64(n), 10)
	b = binary.BigEndian.AppendUint64(b, uint64(len(num)))
	return append(b, num...)
}

// clientMessageID is the id postern passes to providers that take one
// (Clickatell REST and Platform clientMessageId, a template's
// {{.ClientMessageID}}) when ISE sent no climsgid: 27 characters, the same
// for identical requests, so a repeat by ISE can be recognised at the
// provider and in the audit log.
func (k Key) clientMessageID() string {
	var b [3 + 2*12]byte // one allocation: the string itself
	copy(b[:], "pst")
	hex.Encode(b[3:], k[:12])
	return string(b[:])
}

// Joins joins identical requests while the first is in flight: ISE
// repeating a request it thinks was lost must not send the guest a second
// SMS. Only keys are held, and only until the first request is answered.
type Joins struct {
	mu sync.Mutex
	// flights are the messages in flight by the first eight bytes of
	// their key (an HMAC, so as good as random): a map with word keys,
	// cheaper to hash and compare than the whole key. Flights whose keys
	// share those bytes chain through next; each holds its whole key.
	flights map[uint64]*flight
	joiners int // requests waiting for another's outcome (for tests)
	// spare are flights that ended without a joiner, for reuse: once out
	// of flights nobody can reach one, and most messages have no joiner.
	spare []*flight
}

// maxSpareFlights bounds spare: about as many as are in flight at once.
const maxSpareFlights = 256

// flight is one message being sent; done, made by the first request that
// joins it (most messages have none), is closed when its outcome is in.
type flight struct {
	key  Key
	next *flight       // another flight with the same first eight key bytes
	done chan struct{} // guarded by Joins.mu
	d    Delivery
}

// slot is the flights map's key for k.
func slot(k Key) uint64 { return binary.LittleEndian.Uint64(k[:8]) }

// join returns the flight in progress for k and the channel closed when
// it ends, or registers a new one that the caller leads (leader true, done
// nil) and must finish.
func (sf *Joins) join(k Key) (f *flight, done <-chan struct{}, leader bool) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	h := slot(k)
	first := sf.flights[h]
	for f := first; f != nil; f = f.next {
		if f.key == k {
			sf.joiners++
			if f.done == nil {
				f.done = make(chan struct{})
			}
			return f, f.done, false
		}
	}
	if sf.flights == nil {
		sf.flights = map[uint64]*flight{}
	}
	if n := len(sf.spare); n > 0 {
		f, sf.spare = sf.spare[n-1], sf.spare[:n-1]
	} else {
		f = &flight{}
	}
	f.key, f.next = k, first
	sf.flights[h] = f
	return f, nil, true
}

// leave ends a joiner's wait.
func (sf *Joins) leave() {
	sf.mu.Lock()
	sf.joiners--
	sf.mu.Unlock()
}

// Waiting is how many requests are waiting for an identical one in
// flight, so tests can line up a join without sleeping.
func (sf *Joins) Waiting() int {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	return sf.joiners
}

// finish publishes the leader's outcome and lets the next identical
// request send again. The leader is done with f (its Delivery was copied
// out); a flight nobody joined is kept for reuse.
func (sf *Joins) finish(k Key, f *flight) {
	sf.mu.Lock()
	h := slot(k)
	if first := sf.flights[h]; first == f {
		if f.next == nil {
			delete(sf.flights, h)
		} else {
			sf.flights[h] = f.next
		}
	} else {
		for p := first; p != nil; p = p.next {
			if p.next == f {
				p.next = f.next
				break
			}
		}
	}
	done := f.done
	if done == nil && len(sf.spare) < maxSpareFlights {
		*f = flight{}
		sf.spare = append(sf.spare, f)
	}
	sf.mu.Unlock()
	if done != nil {
		close(done)
	}
}

func joinTimedOut() *rewrite.Error {
	return &rewrite.Error{Status: http.StatusGatewayTimeout, Code: rewrite.CodeInternal,
		Description: "Upstream timeout, outcome unknown", Outcome: rewrite.Unknown,
		Cause: errors.New("an identical request in flight did not finish in time")}
}
