package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"
)

// Problem is one thing wrong with an audit trail, at a file's line.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line"`
	What string `json:"problem"`
}

func (p Problem) String() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.What) }

// Verification is what verifying a trail's chain found.
type Verification struct {
	Files  []string `json:"files"`
	Lines  int      `json:"lines"`  // lines read, every kind
	Chains int      `json:"chains"` // chain_start lines
	// Lines whose mac was checked with the key (HMAC-SHA256), checked as a
	// plain SHA-256 chain, or not checked because the chain is keyed and
	// no key (or another key) was given.
	HMACChecked   int `json:"hmac_checked"`
	SHA256Checked int `json:"sha256_checked"`
	Unchecked     int `json:"mac_unchecked"`
	// KeyFingerprints name the keys given (none: no key).
	KeyFingerprints []string `json:"key_fingerprints"`
	// Dropped is the sum of audit_lines_dropped: lines postern could not
	// write to this sink and said so in the chain.
	Dropped  uint64    `json:"dropped_lines_reported"`
	Problems []Problem `json:"problems"`
	// MoreProblems counts problems beyond those listed.
	MoreProblems int    `json:"more_problems,omitempty"`
	Intact       bool   `json:"intact"`
	Checked      string `json:"checked"` // what was checked, in words
}

// maxProblems bounds the problems listed (all are counted).
const maxProblems = 1000

// vline is one line read for verification.
type vline struct {
	file        string
	n           int
	firstInFile bool
	problem     string // why the line is not a chained line at all
	canon, mac  []byte
	seq         uint64
	msg         string
	alg, fp     string
	prevMAC     []byte // a chain_start's prev_mac; nil when it names none
	dropped     uint64
}

// chainCtx is the chain a verifier is in: how its macs are checked.
type chainCtx struct {
	h   hash.Hash // nil: the macs cannot be checked (keyed, no key)
	alg string
}

// Verifier checks audit lines in order, across files. Lines are processed
// one behind the input, so that a line that does not verify can be told
// apart as edited, inserted or swapped with the next.
type Verifier struct {
	keys map[string][]byte // by fingerprint
	res  Verification

	pending *vline
	prev    *vline // the last line the chain continues from; nil: none known
	chain   *chainCtx
	skip    bool // the pending line was handled with the one before
	// noChain: lines seen before any chain_start, reported once per file.
	noChainFile string
}

// NewVerifier verifies with keys (none: keyed chains are checked for
// structure only). A chain keyed with a key not given fails: after a
// reload changed chain_key, give the old key and the new.
func NewVerifier(keys ...[]byte) *Verifier {
	v := &Verifier{keys: map[string][]byte{}, res: Verification{KeyFingerprints: []string{}}}
	for _, k := range keys {
		if len(k) == 0 {
			continue
		}
		fp := KeyFingerprint(k)
		if _, dup := v.keys[fp]; !dup {
			v.keys[fp] = k
			v.res.KeyFingerprints = append(v.res.KeyFingerprints, fp)
		}
	}
	return v
}

// StartFile begins the next file.
func (v *Verifier) StartFile(name string) { v.res.Files = append(v.res.Files, name) }

// Line checks one line of file (its number n, from 1); complete is false
// for a last line without its newline.
func (v *Verifier) Line(file string, n int, b []byte, complete bool) {
	v.res.Lines++
	l := parseVLine(file, n, b, complete)
	if v.pending != nil {
		v.process(v.pending, l)
	}
	v.pending = l
}

// Finish checks the last line and returns the result.
func (v *Verifier) Finish() *Verification {
	if v.pending != nil {
		v.process(v.pending, nil)
		v.pending = nil
	}
	r := &v.res
	r.Intact = len(r.Problems) == 0 && r.MoreProblems == 0
	r.Checked = v.checked()
	if r.Problems == nil {
		r.Problems = []Problem{}
	}
	return r
}

func (v *Verifier) checked() string {
	r := &v.res
	var parts []string
	if r.HMACChecked > 0 {
		parts = append(parts, fmt.Sprintf("HMAC-SHA256 of %d line(s) checked with chain_key (fingerprint %s)", r.HMACChecked, strings.Join(r.KeyFingerprints, ", ")))
	}
	if r.SHA256Checked > 0 {
		parts = append(parts, fmt.Sprintf("SHA-256 chain of %d line(s) checked (no chain_key when written: this detects accidental and careless edits, not a forger who recomputes the hashes)", r.SHA256Checked))
	}
	if r.Unchecked > 0 {
		why := "no chain_key was given"
		if len(v.keys) > 0 {
			why = "they were keyed with another key"
		}
		parts = append(parts, fmt.Sprintf("%d line(s) of keyed chains checked for structure only (seq, links between chains and files, line form): their HMACs were NOT verified because %s", r.Unchecked, why))
	}
	if len(parts) == 0 {
		return "no chained line found"
	}
	return strings.Join(parts, "; ")
}

func (v *Verifier) report(l *vline, format string, args ...any) {
	if len(v.res.Problems) >= maxProblems {
		v.res.MoreProblems++
		return
	}
	v.res.Problems = append(v.res.Problems, Problem{File: l.file, Line: l.n, What: fmt.Sprintf(format, args...)})
}

// chainFields are the fields verification reads from a line.
type chainFields struct {
	Msg            string  `json:"msg"`
	Alg            string  `json:"alg"`
	KeyFingerprint string  `json:"key_fingerprint"`
	PrevMAC        *string `json:"prev_mac"`
	Dropped        uint64  `json:"dropped"`
}

func parseVLine(file string, n int, b []byte, complete bool) *vline {
	l := &vline{file: file, n: n, firstInFile: n == 1}
	b = bytes.TrimSuffix(b, []byte("\r"))
	switch {
	case !complete:
		l.problem = "truncated tail: the last line is incomplete (no newline): the file was cut, or postern stopped mid-line"
		return l
	case len(bytes.TrimSpace(b)) == 0:
		l.problem = "empty line: postern never writes one (inserted)"
		return l
	}
	// Most lines are messages: checking that they are JSON and reading seq
	// from the canonical bytes' end is enough (the mac covers every byte);
	// only the chain's own lines are decoded.
	if !json.Valid(b) {
		l.problem = "torn or edited line: not one complete JSON object"
		return l
	}
	canon, mac, ok := splitMAC(b)
	seq, seqOK := seqOf(canon)
	if !ok || !seqOK {
		l.problem = `line without "seq" and "mac" as its last fields: not written by a chained postern, or edited`
		return l
	}
	l.canon, l.mac, l.seq = bytes.Clone(canon), bytes.Clone(mac), seq
	if bytes.Contains(b, []byte(`"msg":"`+MsgChainStart+`"`)) || bytes.Contains(b, []byte(`"msg":"`+MsgLinesDropped+`"`)) {
		var f chainFields
		if err := json.Unmarshal(b, &f); err != nil {
			l.problem = "torn or edited line: not one complete JSON object"
			return l
		}
		l.msg, l.alg, l.fp, l.dropped = f.Msg, f.Alg, f.KeyFingerprint, f.Dropped
		if f.PrevMAC != nil {
			l.prevMAC = []byte(*f.PrevMAC)
		}
	}
	return l
}

// seqOf reads N from the `,"seq":N` that ends a line's canonical bytes.
func seqOf(canon []byte) (uint64, bool) {
	i := bytes.LastIndex(canon, []byte(`"seq":`))
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(canon[i+len(`"seq":`):]), 10, 64)
	return n, err == nil
}

// macOK reports whether l's mac is right after prev in the current chain
// (always true when the chain's macs cannot be checked).
func (v *Verifier) macOK(prev []byte, l *vline) bool {
	if v.chain == nil || v.chain.h == nil {
		return true
	}
	return hmac.Equal(lineMAC(v.chain.h, prev, l.canon), l.mac)
}

func (v *Verifier) count(l *vline) {
	switch {
	case v.chain == nil || v.chain.h == nil:
		v.res.Unchecked++
	case v.chain.alg == ChainHMAC:
		v.res.HMACChecked++
	default:
		v.res.SHA256Checked++
	}
	v.res.Dropped += l.dropped
}

// usable: a line the chain can be checked against (not broken, not a
// chain_start).
func usable(l *vline) bool { return l != nil && l.problem == "" && l.msg != MsgChainStart }

func (v *Verifier) process(cur, next *vline) {
	if v.skip {
		v.skip = false
		return
	}
	if cur.problem != "" {
		v.report(cur, "%s", cur.problem)
		v.prev = nil // what follows cannot be checked against it
		return
	}
	if cur.msg == MsgChainStart {
		v.chainStart(cur)
		return
	}
	if v.chain == nil || v.prev == nil {
		if v.chain == nil && v.noChainFile != cur.file {
			v.noChainFile = cur.file
			v.report(cur, "no chain_start before this line: the lines before it are missing (deleted, or in an earlier file not given)")
		}
		// Nothing to check it against: the chain continues from it.
		v.count(cur)
		v.prev = cur
		return
	}
	prev, expect := v.prev, v.prev.seq+1
	ok := cur.seq == expect && v.macOK(prev.mac, cur)
	switch {
	case ok:
		v.count(cur)
		v.prev = cur
	case cur.seq == expect+1 && usable(next) && next.seq == expect && v.macOK(prev.mac, next) && v.macOK(next.mac, cur):
		v.report(cur, "lines %d and %d are in the wrong order (seq %d before %d): reordered", cur.n, next.n, cur.seq, next.seq)
		v.count(cur)
		v.count(next)
		v.prev, v.skip = cur, true
	case usable(next) && next.seq == expect && v.macOK(prev.mac, next):
		v.report(cur, "inserted line: the chain continues at the next line as if this one were not there")
	case cur.seq > expect:
		if cur.seq == expect+1 {
			v.report(cur, "deleted line before this one: seq %d is missing", expect)
		} else {
			v.report(cur, "deleted lines before this one: seq %d to %d are missing", expect, cur.seq-1)
		}
		v.count(cur)
		v.prev = cur
	case cur.seq < expect:
		v.report(cur, "inserted or repeated line: seq %d again after %d", cur.seq, prev.seq)
	default:
		v.report(cur, "edited line: its mac does not match its content")
		v.count(cur)
		v.prev = cur
	}
}

func (v *Verifier) chainStart(cur *vline) {
	v.res.Chains++
	if cur.seq != 1 {
		v.report(cur, "chain_start with seq %d, not 1: edited", cur.seq)
	}
	if v.prev != nil && !bytes.Equal(cur.prevMAC, v.prev.mac) {
		if cur.firstInFile && v.prev.file != cur.file {
			v.report(cur, "gap between files: this file's chain_start does not continue the last line of %s (a file between them is missing, the files are out of order, or lines were cut from the end of %s)", v.prev.file, v.prev.file)
		} else {
			v.report(cur, "chain_start does not link to the line before it: lines were deleted or inserted before it")
		}
	}
	v.chain = &chainCtx{alg: cur.alg}
	switch cur.alg {
	case ChainSHA256:
		v.chain.h = sha256.New()
	case ChainHMAC:
		if len(v.keys) == 0 {
			break
		}
		if k, ok := v.keys[cur.fp]; ok {
			v.chain.h = hmac.New(sha256.New, k)
		} else {
			v.report(cur, "wrong key: this chain was keyed with the key of fingerprint %s, not with chain_key (fingerprint %s); its HMACs cannot be verified", cur.fp, strings.Join(v.res.KeyFingerprints, ", "))
		}
	default:
		v.report(cur, "chain_start names an unknown algorithm %q: edited", cur.alg)
	}
	if !v.macOK(cur.prevMAC, cur) {
		v.report(cur, "edited line: the chain_start's mac does not match its content")
	}
	v.count(cur)
	v.prev = cur
}

// ReadTrail reads audit files in the order given (gzip-compressed ones,
// as rotation tools leave them, are read through gunzip) and calls each
// for every line, numbered from 1; complete is false for a last line
// without its newline.
func ReadTrail(names []string, start func(file string), each func(file string, n int, line []byte, complete bool)) error {
	for _, name := range names {
		if err := readTrailFile(name, start, each); err != nil {
			return err
		}
	}
	return nil
}

func readTrailFile(name string, start func(string), each func(string, int, []byte, bool)) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		defer zr.Close()
		r = zr
	}
	if start != nil {
		start(name)
	}
	lr := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := lr.ReadBytes('\n')
		if len(line) > 0 {
			complete := line[len(line)-1] == '\n'
			each(name, n, bytes.TrimSuffix(line, []byte("\n")), complete)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
	}
}

// VerifyFiles verifies the chain of audit files given in order (see
// ReadTrail) with keys (none: no key).
func VerifyFiles(names []string, keys ...[]byte) (*Verification, error) {
	v := NewVerifier(keys...)
	if err := ReadTrail(names, v.StartFile, v.Line); err != nil {
		return nil, err
	}
	return v.Finish(), nil
}
