package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// The audit trail is a hash chain (docs/audit-trail.md is the auditor's
// description; keep the two in step). Every line a sink writes ends with
// two fields added here, after whatever produced the line:
//
//	{...the line...,"seq":N,"mac":"<64 lowercase hex>"}\n
//
// The canonical bytes of a line are the line as written up to, not
// including, the `,"mac":"` that starts its last field (so they end with
// `,"seq":N`). Its mac is
//
//	HMAC-SHA256(chain_key, prev || canonical)   with [audit] chain_key
//	SHA-256(prev || canonical)                   without
//
// where prev is the previous line's mac as its 64 hex characters, or, for a
// chain_start line, the prev_mac it names (64 "0" when it names none).
//
// Each sink keeps its own chain, so every copy of the trail (the file, the
// console, the SIEM's) verifies on its own and a line a sink lost does not
// break another sink's chain. A chain begins with a chain_start line (seq 1)
// when postern starts, when a file sink finds a different or truncated file
// (rotation) and when a reload changes chain_key; a file sink's chain_start
// names the last mac of the file it appends to, or of the file before a
// rotation, so restarts and rotations link up. Lines a sink could not write
// are not part of its chain; the next line it writes is preceded by an
// audit_lines_dropped line saying how many were lost.

// Chain algorithms, as a chain_start line names them.
const (
	ChainHMAC   = "hmac-sha256"
	ChainSHA256 = "sha256"
)

// Messages of the lines the chain itself writes.
const (
	MsgChainStart   = "chain_start"
	MsgLinesDropped = "audit_lines_dropped"
)

// Reasons a chain_start gives.
const (
	ChainReasonStart      = "start"       // postern started
	ChainReasonRotated    = "rotated"     // a file sink found a new or truncated file
	ChainReasonKeyChanged = "key_changed" // a reload changed chain_key
)

const macHexLen = sha256.Size * 2

// noPrevMAC stands for the previous mac of a chain that links to nothing.
var noPrevMAC = bytes.Repeat([]byte("0"), macHexLen)

// macFieldPrefix starts the last field of every chained line.
const macFieldPrefix = `,"mac":"`

// macSuffixLen is the length of `,"mac":"<64 hex>"}` at the end of a line
// (without its newline).
const macSuffixLen = len(macFieldPrefix) + macHexLen + 2

// ChainKey is [audit] chain_key. It never prints.
type ChainKey []byte

func (ChainKey) String() string   { return "<redacted>" }
func (ChainKey) GoString() string { return "<redacted>" }

// KeyFingerprint names a chain key without revealing it: the first 16 hex
// characters of HMAC-SHA256(key, "postern chain key fingerprint").
func KeyFingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("postern chain key fingerprint"))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// chainKey is the key every sink's chain runs with; a nil key is plain
// SHA-256. The pointer identifies it: a reload with a different key stores
// a new one.
type chainKey struct {
	key []byte
	fp  string // "" without key
}

func newChainKey(key []byte) *chainKey {
	if len(key) == 0 {
		return &chainKey{}
	}
	return &chainKey{key: bytes.Clone(key), fp: KeyFingerprint(key)}
}

func (k *chainKey) alg() string {
	if k.key == nil {
		return ChainSHA256
	}
	return ChainHMAC
}

func (k *chainKey) newHash() hash.Hash {
	if k.key == nil {
		return sha256.New()
	}
	return hmac.New(sha256.New, k.key)
}

// SetChainKey makes every sink start a new chain, linked to its last line,
// with key (nil: plain SHA-256) before its next line. The same key again
// changes nothing. A reload calls it.
func (s *Sinks) SetChainKey(key []byte) {
	cur := s.key.Load()
	if cur != nil && bytes.Equal(cur.key, key) {
		return
	}
	s.key.Store(newChainKey(key))
}

// sinkChain is one sink's chain. It is used only by the sink's goroutine.
type sinkChain struct {
	keys    *atomic.Pointer[chainKey]
	version string
	now     func() time.Time

	key     *chainKey // the key the running chain uses; nil before the first chain_start
	h       hash.Hash
	seq     uint64
	prev    []byte          // mac of the last line written, hex; nil before any
	prevArr [macHexLen]byte // prev's bytes once a line is written: no allocation a line
	noted   uint64          // dropped lines already reported in the chain
	start   string          // reason of a chain_start still to write; "" when none is due
	startAt []byte          // prev_mac that chain_start names (nil: none)
	buf     []byte
}

// destination is a sink whose destination can change under postern: a
// file moved away by a rotation tool, truncated, or replaced.
type destination interface {
	// switched checks the destination before a line and reports whether it
	// is not the one the last line went to, with the last mac found at its
	// end ("" when there is none).
	switched() (fresh bool, tailMAC string, err error)
	// wrote records that n bytes were appended.
	wrote(n int)
}

// writeChained writes one audit line with seq and mac, preceded by a
// chain_start when a chain is due and by an audit_lines_dropped line when
// lines were lost since the last one written.
func (qs *queuedSink) writeChained(line []byte) error {
	if err := qs.prepareChain(); err != nil {
		return err
	}
	c := qs.chain
	if d := qs.dropped.Load(); d > c.noted {
		marker := fmt.Appendf(nil, `{"time":%q,"level":"WARN","msg":%q,"dropped":%d}`, c.now().Format(time.RFC3339Nano), MsgLinesDropped, d-c.noted)
		if err := qs.writeSealed(marker); err != nil {
			return err
		}
		c.noted = d
	}
	return qs.writeSealed(line)
}

// prepareChain writes the chain_start that is due, if any: first start,
// a new file, or a new key.
func (qs *queuedSink) prepareChain() error {
	c := qs.chain
	if d, ok := qs.w.(destination); ok {
		fresh, tail, err := d.switched()
		if err != nil {
			return err
		}
		if fresh {
			c.start = ChainReasonRotated
			if c.key == nil {
				c.start = ChainReasonStart
			}
			// A file postern appends to links to its own last line; a new
			// one to the last line this sink wrote before.
			c.startAt = c.prev
			if tail != "" {
				c.startAt = []byte(tail)
			}
		}
	}
	if k := c.keys.Load(); c.key != nil && k != c.key && c.start == "" {
		c.start, c.startAt = ChainReasonKeyChanged, c.prev
	}
	if c.key == nil && c.start == "" {
		c.start = ChainReasonStart
	}
	if c.start == "" {
		return nil
	}
	k := c.keys.Load()
	b := fmt.Appendf(nil, `{"time":%q,"level":"INFO","msg":%q,"version":%s,"alg":%q`,
		c.now().Format(time.RFC3339Nano), MsgChainStart, strconv.Quote(c.version), k.alg())
	if k.fp != "" {
		b = fmt.Appendf(b, `,"key_fingerprint":%q`, k.fp)
	}
	b = fmt.Appendf(b, `,"reason":%q`, c.start)
	if c.startAt != nil {
		b = fmt.Appendf(b, `,"prev_mac":%q`, c.startAt)
	}
	b = append(b, '}')
	// The chain_start is line 1 of a new chain under the new key, its mac
	// computed over the mac it names.
	saved := *c
	c.key, c.h, c.seq, c.prev = k, k.newHash(), 0, c.startAt
	if err := qs.writeSealed(b); err != nil {
		*c = saved
		return err
	}
	c.start, c.startAt = "", nil
	return nil
}

// writeSealed seals line (a JSON object, with or without its newline) as
// the chain's next line and writes it; the chain advances only when the
// write succeeded.
func (qs *queuedSink) writeSealed(line []byte) error {
	c := qs.chain
	var mac []byte
	c.buf, mac = sealLine(c.buf[:0], c.h, c.prev, c.seq+1, line)
	if qs.collect {
		qs.pending = append(qs.pending, c.buf...) // written by writeBatch
	} else if err := qs.w.write(c.buf); err != nil {
		return err
	}
	if d, ok := qs.w.(destination); ok {
		d.wrote(len(c.buf))
	}
	c.seq++
	// Into the chain's own array: prev may be startAt, read above and
	// not after; saved (prepareChain) holds the array's old bytes only if
	// this line was not written.
	c.prev = append(c.prevArr[:0], mac...)
	return nil
}

// sealLine appends to dst line with ,"seq":seq and ,"mac":"..." as its last
// fields and a newline, and returns it with the mac (hex). prev nil is
// noPrevMAC.
func sealLine(dst []byte, h hash.Hash, prev []byte, seq uint64, line []byte) ([]byte, []byte) {
	line = bytes.TrimRight(line, "\r\n \t")
	line = bytes.TrimSuffix(line, []byte("}"))
	dst = append(dst, line...)
	if len(bytes.TrimSpace(line)) > 1 { // not just "{"
		dst = append(dst, ',')
	}
	dst = append(dst, `"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	canonical := len(dst)
	dst = append(dst, macFieldPrefix...)
	start := len(dst)
	dst = appendLineMAC(dst, h, prev, dst[:canonical])
	dst = append(dst, '"', '}', '\n')
	return dst, dst[start : start+macHexLen]
}

// lineMAC is the mac (hex) of a line's canonical bytes after prev.
func lineMAC(h hash.Hash, prev, canonical []byte) []byte {
	return appendLineMAC(nil, h, prev, canonical)
}

// appendLineMAC appends lineMAC's hex to dst. canonical may be part of
// dst: it is read before dst grows.
func appendLineMAC(dst []byte, h hash.Hash, prev, canonical []byte) []byte {
	if prev == nil {
		prev = noPrevMAC
	}
	h.Reset()
	h.Write(prev)
	h.Write(canonical)
	var sum [sha256.Size]byte
	return hex.AppendEncode(dst, h.Sum(sum[:0]))
}

// splitMAC splits a chained line (without its newline) into its canonical
// bytes and its mac; ok is false when the line does not end with a mac
// field.
func splitMAC(line []byte) (canonical, mac []byte, ok bool) {
	if len(line) < macSuffixLen || !bytes.HasSuffix(line, []byte(`"}`)) {
		return nil, nil, false
	}
	cut := len(line) - macSuffixLen
	if !bytes.Equal(line[cut:cut+len(macFieldPrefix)], []byte(macFieldPrefix)) {
		return nil, nil, false
	}
	mac = line[cut+len(macFieldPrefix) : len(line)-2]
	for _, c := range mac {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, nil, false
		}
	}
	return line[:cut], mac, true
}

// maxTail bounds how much of a file's end is read for its last line.
const maxTail = 1 << 20

// readTail returns the mac of the last complete line of f ("" when it has
// none) and whether f ends in a torn line (no newline: postern died
// mid-write, or the file was cut).
func readTail(f *os.File) (mac string, torn bool, err error) {
	st, err := f.Stat()
	if err != nil {
		return "", false, err
	}
	size := st.Size()
	if size == 0 {
		return "", false, nil
	}
	off := max(size-maxTail, 0)
	buf := make([]byte, size-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return "", false, fmt.Errorf("reading the end of the audit file: %w", err)
	}
	torn = buf[len(buf)-1] != '\n'
	end := bytes.LastIndexByte(buf, '\n')
	if end < 0 {
		return "", torn, nil
	}
	last := buf[:end]
	last = last[bytes.LastIndexByte(last, '\n')+1:]
	if _, m, ok := splitMAC(last); ok {
		return string(m), torn, nil
	}
	return "", torn, nil
}

// switched reopens the file when the path names another file now (moved
// away by rotation) and reports a file other than the one the last line
// went to, or one that shrank (copytruncate), as fresh. A fresh file that
// ends in a torn line gets a newline first, so that the torn line stays
// one (reported) line and the next one is whole.
func (s *fileSink) switched() (bool, string, error) {
	if s.f == nil || s.rotated() {
		if err := s.reopen(); err != nil {
			return false, "", err
		}
	}
	st, err := s.f.Stat()
	if err != nil {
		return false, "", fmt.Errorf("audit file: %w", err)
	}
	if s.chained != nil && os.SameFile(st, s.chained) && st.Size() >= s.end {
		return false, "", nil
	}
	// Opened for appending only: read the tail through a second handle.
	r, err := os.Open(s.path)
	if err != nil {
		return false, "", fmt.Errorf("reading the audit file's last line: %w", err)
	}
	defer r.Close()
	tail, torn, err := readTail(r)
	if err != nil {
		return false, "", err
	}
	if torn {
		if _, err := s.f.Write([]byte("\n")); err != nil {
			return false, "", fmt.Errorf("ending the audit file's torn last line: %w", err)
		}
	}
	s.chained, s.end = st, st.Size()
	if torn {
		s.end++
	}
	return true, tail, nil
}

func (s *fileSink) wrote(n int) { s.end += int64(n) }
