// Package macpool computes HMAC-SHA256 under one key with reused states.
//
// A new HMAC costs five allocations and a copy of the key's padded
// blocks; postern takes one per message for its idempotency key and one
// per number and client it names in the shared store, so the states (and
// a scratch buffer to frame the input in) are pooled instead.
package macpool

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
)

// Size is the length of a sum.
const Size = sha256.Size

// maxKeptBuffer bounds the scratch buffer a state keeps in the pool, so
// that one unusually long input does not stay in memory.
const maxKeptBuffer = 16 << 10

// Pool computes HMAC-SHA256 with one key. It is safe for concurrent use.
type Pool struct{ p sync.Pool }

type state struct {
	h   hash.Hash
	buf []byte
	sum []byte
}

// New returns a Pool for key. The key is copied by the HMAC states.
func New(key []byte) *Pool {
	key = append([]byte(nil), key...)
	p := &Pool{}
	p.p.New = func() any { return &state{h: hmac.New(sha256.New, key)} }
	return p
}

// Sum returns the HMAC of the bytes frame appends to the empty scratch
// buffer it is given. frame must return what it appended to (the buffer
// may have grown) and must not keep the buffer.
func (p *Pool) Sum(frame func(b []byte) []byte) (out [Size]byte) {
	st := p.p.Get().(*state)
	st.buf = frame(st.buf[:0])
	st.h.Reset()
	st.h.Write(st.buf)
	st.sum = st.h.Sum(st.sum[:0])
	copy(out[:], st.sum)
	if cap(st.buf) <= maxKeptBuffer {
		p.p.Put(st)
	}
	return out
}

// SumString is Sum of s.
func (p *Pool) SumString(s string) [Size]byte {
	return p.Sum(func(b []byte) []byte { return append(b, s...) })
}
