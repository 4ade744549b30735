package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
