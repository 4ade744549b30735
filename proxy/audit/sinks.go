package audit

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
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
}

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
		s.add("stdout", consoleSink{stdout}, cfg.Queue)
	case "stderr":
		s.add("stderr", consoleSink{stderr}, cfg.Queue)
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
	qs := &queuedSink{name: name, w: w, q: make(chan *queuedLine, max(queue, 1)), lines: &s.lines,
		reopen: make(chan struct{}, 1), done: make(chan struct{}), log: s.log,
		chain: &sinkChain{keys: &s.key, version: s.version, now: time.Now}}
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
			err := qs.writeChained(line.b)
			qs.release(line)
			if err != nil {
				qs.dropped.Add(1)
				if !failing {
					qs.log.Error("audit sink failing; lines are dropped and counted until it recovers", "sink", qs.name, "err", err)
				}
				failing = true
				continue
			}
			qs.written.Add(1)
			if failing {
				qs.log.Warn("audit sink recovered", "sink", qs.name, "dropped_total", qs.dropped.Load())
			}
			failing = false
		case <-qs.reopen:
			if err := qs.w.reopen(); err != nil {
				qs.log.Error("audit sink reopen failed", "sink", qs.name, "err", err)
			}
			_ = qs.prepareChain() // a new file begins with its chain_start
		}
	}
}

// consoleSink writes to stdout or stderr.
type consoleSink struct{ w io.Writer }

func (c consoleSink) write(line []byte) error { _, err := c.w.Write(line); return err }
func (consoleSink) reopen() error             { return nil }
func (consoleSink) close() error              { return nil }

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
