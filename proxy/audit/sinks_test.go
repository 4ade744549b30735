package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestEverySinkGetsEveryLineIntact: lines written concurrently reach every
// sink whole and unchanged, even when one sink is held back while the
// other runs ahead — a line is shared by the sinks and reused only after
// the last of them wrote it.
func TestEverySinkGetsEveryLineIntact(t *testing.T) {
	const writers, perWriter = 4, 500
	var console bytes.Buffer
	held := blockingWriter{release: make(chan struct{}), w: &console}
	path := filepath.Join(t.TempDir(), "audit.log")
	s, err := OpenSinks(Config{Console: "stdout", File: path, Queue: writers * perWriter}, held, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				// Lines of different lengths, so a reused buffer shows.
				pad := bytes.Repeat([]byte("x"), (w*perWriter+i)%97)
				s.Write(fmt.Appendf(nil, `{"msg":"message","n":"%d-%d","pad":%q}`+"\n", w, i, pad))
			}
		}()
	}
	wg.Wait()
	close(held.release) // the console now catches up with lines the file sink is long done with
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fileOut, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string][]byte{"stdout": console.Bytes(), "file": fileOut} {
		seen := map[string]bool{}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			var line struct{ Msg, N, Pad string }
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("%s: a line is not JSON (%v): %q", name, err, sc.Bytes())
			}
			if line.Msg != "message" {
				continue // chain_start
			}
			var w, i int
			if _, err := fmt.Sscanf(line.N, "%d-%d", &w, &i); err != nil || len(line.Pad) != (w*perWriter+i)%97 || seen[line.N] {
				t.Fatalf("%s: line %q is not one that was written (or came twice)", name, sc.Bytes())
			}
			seen[line.N] = true
		}
		if len(seen) != writers*perWriter {
			t.Errorf("%s: %d lines, want %d", name, len(seen), writers*perWriter)
		}
	}
	if d := s.Dropped(); d != 0 {
		t.Errorf("%d lines dropped", d)
	}
}

// recordingWriter keeps every Write call's bytes. The first call waits
// for release, so that lines queue up behind it; calls listed in fail
// (counting from 1) fail without writing.
type recordingWriter struct {
	release chan struct{}
	fail    map[int]bool
	mu      sync.Mutex
	calls   [][]byte
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	n := len(r.calls) + 1
	r.calls = append(r.calls, bytes.Clone(p))
	r.mu.Unlock()
	if n == 1 {
		<-r.release
	}
	if r.fail[n] {
		return 0, fmt.Errorf("write %d refused", n)
	}
	return len(p), nil
}

// written is what the writer took, failed calls left out.
func (r *recordingWriter) written() []byte {
	var out []byte
	for i, c := range r.calls {
		if !r.fail[i+1] {
			out = append(out, c...)
		}
	}
	return out
}

// TestConsoleLinesGoOutInAtomicBatches: console lines queued behind the
// one being written go out with it in one write, as whole lines and never
// more than PIPE_BUF bytes unless one line alone is longer; the chain runs
// through the batches unbroken, and a batch whose write fails is dropped,
// counted and recorded in the chain like single lines were.
func TestConsoleLinesGoOutInAtomicBatches(t *testing.T) {
	rw := &recordingWriter{release: make(chan struct{}), fail: map[int]bool{4: true}}
	s, err := OpenSinks(Config{Console: "stdout", Queue: 1000, ChainKey: testKey}, rw, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const lines = 60
	for i := range lines {
		pad := strings.Repeat("p", 400+i%7)
		if i == 30 {
			pad = strings.Repeat("L", 5000) // longer than one atomic write
		}
		s.Write(fmt.Appendf(nil, `{"msg":"message","n":%d,"pad":%q}`+"\n", i, pad))
	}
	close(rw.release)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if len(rw.calls) >= lines/2 {
		t.Errorf("%d writes for %d queued lines: not batched", len(rw.calls), lines)
	}
	for i, c := range rw.calls {
		if !bytes.HasSuffix(c, []byte("\n")) {
			t.Errorf("write %d does not end a line", i+1)
		}
		if len(c) > atomicWrite && bytes.Count(c, []byte("\n")) > 1 {
			t.Errorf("write %d: %d bytes in %d lines, over PIPE_BUF", i+1, len(c), bytes.Count(c, []byte("\n")))
		}
	}
	failed := uint64(bytes.Count(rw.calls[3], []byte(`"msg":"message"`)))
	st := s.Stats()[0]
	if failed == 0 || st.Dropped != failed || st.Written+st.Dropped != lines {
		t.Errorf("written %d, dropped %d; the failed write held %d of %d lines", st.Written, st.Dropped, failed, lines)
	}
	path := filepath.Join(t.TempDir(), "stdout.log")
	if err := os.WriteFile(path, rw.written(), 0o600); err != nil {
		t.Fatal(err)
	}
	v := verify(t, []string{path}, testKey)
	mustBeIntact(t, v)
	if v.Dropped != failed {
		t.Errorf("the chain records %d dropped lines, want %d", v.Dropped, failed)
	}
}

// BenchmarkConsoleBacklog is a console sink catching up with a backlog:
// lines queued faster than they are written, to a pipe a reader drains,
// written line by line and in atomic batches:
//
//	go test -run='^$' -bench=ConsoleBacklog -benchmem ./proxy/audit/
func BenchmarkConsoleBacklog(b *testing.B) {
	line := fmt.Appendf(nil, `{"msg":"message","pad":%q}`+"\n", strings.Repeat("p", 500))
	for _, batches := range []bool{false, true} {
		b.Run(fmt.Sprintf("batches=%v", batches), func(b *testing.B) {
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			go io.Copy(io.Discard, r)
			s, err := OpenSinks(Config{Console: "stdout", Queue: b.N + 1}, w, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			s.sinks[0].batches = batches
			b.SetBytes(int64(len(line)))
			b.ResetTimer()
			for range b.N {
				s.Write(line)
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			w.Close()
			if st := s.Stats()[0]; st.Dropped != 0 {
				b.Fatalf("%d lines dropped", st.Dropped)
			}
		})
	}
}
