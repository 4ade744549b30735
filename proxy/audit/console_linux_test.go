//go:build linux

package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// openDescriptors counts the process's open file descriptors.
func openDescriptors(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// TestConsoleSinkOnAPipe: when stdout is a pipe, as under journald's
// stdout pipe or a container runtime, the console sink writes every line
// through sysconn.Console and closes the descriptor it opened for that.
func TestConsoleSinkOnAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	got := make(chan []byte, 1)
	go func() {
		var b bytes.Buffer
		b.ReadFrom(r)
		got <- b.Bytes()
	}()
	before := openDescriptors(t)
	s, err := OpenSinks(Config{Console: "stdout", Queue: 1000, ChainKey: testKey}, w, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := openDescriptors(t); n != before+1 {
		t.Errorf("%d descriptors open with the sink, want %d (the pipe's non-blocking one)", n, before+1)
	}
	for i := range 500 {
		s.Write(fmt.Appendf(nil, `{"msg":"message","n":%d}`+"\n", i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openDescriptors(t); n != before {
		t.Errorf("%d descriptors open after Close, want %d", n, before)
	}
	w.Close()
	next := 0
	sc := bufio.NewScanner(bytes.NewReader(<-got))
	for sc.Scan() {
		var line struct {
			Msg string
			N   int
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("a line is not JSON (%v): %q", err, sc.Bytes())
		}
		if line.Msg != "message" {
			continue // chain_start
		}
		if line.N != next {
			t.Fatalf("line %d came where %d was due", line.N, next)
		}
		next++
	}
	if next != 500 {
		t.Errorf("%d lines arrived, want 500", next)
	}
}
