package audit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postern/postern/internal/sysconn"
)

// Sinks sends each audit line to every configured sink: the console
// (stdout or stderr), an append-only file and syslog. It is the io.Writer
// under the audit slog.Logger, which writes each line with one Write call.
//
// A sink that is slow or down never blocks message delivery: every sink has
// its own bounded queue and goroutine, and a line that does not fit in the
// queue, or that the sink fails to write, is dropped and counted.
type Sinks struct {
	sinks   []*queuedSink
	lines   sync.Pool // of *queuedLine
	log     *slog.Logger
	key     atomic.Pointer[chainKey] // the key every sink's chain runs with (chain.go)
	version string
}

// SinkStats are one sink's counters since start.
type SinkStats struct {
	Name    string // "stdout", "file /var/log/postern/audit.log", "syslog tls://siem:6514"
	Written uint64
	Dropped uint64 // lines lost: queue full or write failed
}

// sinkWriter is one destination. Its methods are only called from the
// sink's own goroutine.
type sinkWriter interface {
	write(line []byte) error
	reopen() error
	close() error
}

// queuedLine is one audit line on its way to every sink, shared by them:
// the last sink done with it returns it to Sinks.lines, so that a line
// costs no allocation once the pool is warm.
type queuedLine struct {
	b    []byte
	refs atomic.Int32 // sinks yet to write it
}

// maxPooledLine bounds the lines kept for reuse, so that one unusually
// long line does not stay in memory.
const maxPooledLine = 16 << 10

type queuedSink struct {
	name    string
	w       sinkWriter
	q       chan *queuedLine
	lines   *sync.Pool
	reopen  chan struct{}
	done    chan struct{}
	written atomic.Uint64
	dropped atomic.Uint64
	log     *slog.Logger
	chain   *sinkChain // seq and mac of every line (chain.go)

	// batches: lines already queued behind the one being written go out
	// with it in one write (the console), as whole lines and at most
	// atomicWrite bytes. collect is set while a batch is being sealed:
	// writeSealed then appends to pending instead of writing.
	batches bool
	collect bool
	pending []byte
}

// atomicWrite bounds a batch of console lines: POSIX makes a pipe write of
// at most PIPE_BUF (4096 bytes on Linux) atomic, so another writer to the
// same pipe (the operational log, when the console sink is stderr) can
// never land inside an audit line. A longer line is written alone, as it
// always was.
const atomicWrite = 4096

// OpenSinks opens every sink cfg names. A file that cannot be opened is
// an error (postern must not start without the audit trail it was told to
// keep); a syslog server that is down is not: its lines are dropped and
// counted until it comes back.
func OpenSinks(cfg Config, stdout, stderr io.Writer, log *slog.Logger) (*Sinks, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sinks{log: log, version: cfg.Version}
	s.key.Store(newChainKey(cfg.ChainKey))
	switch cfg.Console {
	case "stdout", "":
		s.add("stdout", newConsoleSink(stdout), cfg.Queue)
	case "stderr":
		s.add("stderr", newConsoleSink(stderr), cfg.Queue)
	}
	if cfg.File != "" {
		f, err := openAuditFile(cfg.File)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.add("file "+cfg.File, f, cfg.Queue)
	}
	if cfg.Syslog != nil {
		s.add("syslog "+cfg.Syslog.String(), newSyslogSink(cfg), cfg.Queue)
	}
	return s, nil
}

func (s *Sinks) add(name string, w sinkWriter, queue int) {
	_, console := w.(consoleSink)
	qs := &queuedSink{name: name, w: w, q: make(chan *queuedLine, max(queue, 1)), lines: &s.lines,
		reopen: make(chan struct{}, 1), done: make(chan struct{}), log: s.log,
		chain: &sinkChain{keys: &s.key, version: s.version, now: time.Now}, batches: console}
	s.sinks = append(s.sinks, qs)
	go qs.run()
}

// Write queues one audit line for every sink and never blocks.
func (s *Sinks) Write(p []byte) (int, error) {
	if len(s.sinks) == 0 {
		return len(p), nil
	}
	line, _ := s.lines.Get().(*queuedLine)
	if line == nil {
		line = new(queuedLine)
	}
	line.b = append(line.b[:0], p...)
	line.refs.Store(int32(len(s.sinks)))
	for _, qs := range s.sinks {
		select {
		case qs.q <- line:
		default:
			qs.dropped.Add(1)
			qs.release(line)
		}
	}
	return len(p), nil
}

// release is a sink's end with line: the last one returns it for reuse.
func (qs *queuedSink) release(line *queuedLine) {
	if line.refs.Add(-1) == 0 && cap(line.b) <= maxPooledLine {
		qs.lines.Put(line)
	}
}

// Reopen makes file sinks close and reopen their file, for log rotation
// tools that move the file and send SIGHUP. It returns at once; the reopen
// happens in each sink's goroutine between two lines.
func (s *Sinks) Reopen() {
	for _, qs := range s.sinks {
		select {
		case qs.reopen <- struct{}{}:
		default: // one is already pending
		}
	}
}

// Close writes what is queued (waiting at most a few seconds for a slow
// sink) and closes every sink.
func (s *Sinks) Close() error {
	var errs []error
	for _, qs := range s.sinks {
		close(qs.q)
	}
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for _, qs := range s.sinks {
		select {
		case <-qs.done:
		case <-deadline.C:
			errs = append(errs, fmt.Errorf("audit sink %s: not drained on close", qs.name))
			continue
		}
		if err := qs.w.close(); err != nil {
			errs = append(errs, fmt.Errorf("audit sink %s: %w", qs.name, err))
		}
	}
	return errors.Join(errs...)
}

// Stats returns each sink's counters.
func (s *Sinks) Stats() []SinkStats {
	out := make([]SinkStats, len(s.sinks))
	for i, qs := range s.sinks {
		out[i] = SinkStats{Name: qs.name, Written: qs.written.Load(), Dropped: qs.dropped.Load()}
	}
	return out
}

// Dropped is the number of audit lines lost over all sinks.
func (s *Sinks) Dropped() uint64 {
	var n uint64
	for _, qs := range s.sinks {
		n += qs.dropped.Load()
	}
	return n
}

func (qs *queuedSink) run() {
	defer close(qs.done)
	failing := false
	// The chain_start goes out at once, so a restart shows even without
	// traffic; when the sink is down it goes before the next line.
	_ = qs.prepareChain()
	for {
		select {
		case <-qs.reopen:
			if err := qs.w.reopen(); err != nil {
				qs.log.Error("audit sink reopen failed", "sink", qs.name, "err", err)
			}
			_ = qs.prepareChain() // a new file begins with its chain_start
			continue
		default:
		}
		select {
		case line, ok := <-qs.q:
			if !ok {
				return
			}
			closed := false
			for line != nil {
				n, err, next := 1, error(nil), (*queuedLine)(nil)
				if qs.batches {
					n, next, closed, err = qs.writeBatch(line)
				} else {
					err = qs.writeChained(line.b)
					qs.release(line)
				}
				failing = qs.account(n, err, failing)
				line = next
			}
			if closed {
				return
			}
		case <-qs.reopen:
			if err := qs.w.reopen(); err != nil {
				qs.log.Error("audit sink reopen failed", "sink", qs.name, "err", err)
			}
			_ = qs.prepareChain() // a new file begins with its chain_start
		}
	}
}

// account counts n lines written, or dropped when err is set, and logs
// when the sink starts failing and when it recovers. It returns whether
// the sink is failing now.
func (qs *queuedSink) account(n int, err error, failing bool) bool {
	if err != nil {
		qs.dropped.Add(uint64(n))
		if !failing {
			qs.log.Error("audit sink failing; lines are dropped and counted until it recovers", "sink", qs.name, "err", err)
		}
		return true
	}
	qs.written.Add(uint64(n))
	if failing {
		qs.log.Warn("audit sink recovered", "sink", qs.name, "dropped_total", qs.dropped.Load())
	}
	return false
}

// writeBatch seals first and the lines queued behind it that fit in one
// atomic write with it, and writes them in one call. n lines were taken:
// all written, or, when the write failed, all dropped, with the chain as
// it was before them. next is a line taken from the queue that did not
// fit, for the next batch; closed: the queue was closed meanwhile.
func (qs *queuedSink) writeBatch(first *queuedLine) (n int, next *queuedLine, closed bool, err error) {
	c := qs.chain
	before := *c
	qs.collect, qs.pending = true, qs.pending[:0]
	defer func() { qs.collect = false }()
	yielded := false
	for line := first; line != nil; {
		mark, sealed := len(qs.pending), *c
		if err := qs.writeChained(line.b); err != nil {
			qs.release(line)
			*c = before
			return n + 1, nil, false, err
		}
		if n > 0 && len(qs.pending) > atomicWrite {
			qs.pending, *c = qs.pending[:mark], sealed // unsealed: it starts the next batch
			next = line
			break
		}
		qs.release(line)
		n++
		select {
		case l, ok := <-qs.q:
			line, closed = l, !ok
		default:
			line = nil
			if n == 1 && !yielded {
				// Nothing queued behind the first line: let the
				// goroutines ready to run (under load, messages about
				// to queue their lines) go first, once, and take what
				// they queued into this write. At 50 connections this
				// halves the sink's writes and wake-ups (0.45 a
				// message instead of 1); idle, it costs a yield.
				yielded = true
				runtime.Gosched()
				select {
				case l, ok := <-qs.q:
					line, closed = l, !ok
				default:
				}
			}
		}
	}
	if err := qs.w.write(qs.pending); err != nil {
		*c = before
		return n, next, closed, err
	}
	return n, next, closed, nil
}

// consoleSink writes to stdout or stderr.
type consoleSink struct{ w io.Writer }

// newConsoleSink writes to w; the process's own stdout or stderr through
// sysconn.Console, whose raw non-blocking writes keep the runtime's system
// monitor from handing the sink's P to another thread whenever the pipe's
// reader runs first (docs/benchmarks.md, issue 13).
func newConsoleSink(w io.Writer) consoleSink {
	if f, ok := w.(*os.File); ok {
		return consoleSink{sysconn.NewConsole(f)}
	}
	return consoleSink{w}
}

func (c consoleSink) write(line []byte) error { _, err := c.w.Write(line); return err }
func (consoleSink) reopen() error             { return nil }

func (c consoleSink) close() error {
	if sc, ok := c.w.(*sysconn.Console); ok {
		return sc.Close()
	}
	return nil
}

// fileSink appends to a file. Before each line it checks that the path
// still names the open file, so a rotation tool that moves the file away
// (with or without SIGHUP) gets a fresh file at the configured path.
type fileSink struct {
	path    string
	f       *os.File
	chained os.FileInfo // the file the chain's last line went to (chain.go)
	end     int64       // its size after that line
}

func openAuditFile(path string) (*fileSink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening audit file: %w", err)
	}
	return &fileSink{path: path, f: f}, nil
}

// Rotation is checked by switched (chain.go) before each line, so that a
// new file begins with its chain_start.
func (s *fileSink) write(line []byte) error {
	if s.f == nil {
		if err := s.reopen(); err != nil {
			return err
		}
	}
	_, err := s.f.Write(line)
	return err
}

// rotated reports whether the path no longer names the open file.
func (s *fileSink) rotated() bool {
	if s.f == nil {
		return false
	}
	onDisk, err := os.Stat(s.path)
	if err != nil {
		return true
	}
	open, err := s.f.Stat()
	return err != nil || !os.SameFile(onDisk, open)
}

func (s *fileSink) reopen() error {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("reopening audit file: %w", err)
	}
	s.f = f
	return nil
}

func (s *fileSink) close() error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}
