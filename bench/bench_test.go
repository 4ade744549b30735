package main

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBenchSmoke runs the load benchmark for a moment at 1 and 2
// connections: the whole harness works and reports every figure. It says
// nothing about speed (see docs/benchmarks.md for that).
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs postern")
	}
	rep, err := benchmark(config{levels: []int{1, 2}, duration: 200 * time.Millisecond, rounds: 1, maxUpstream: 1000, log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.levels) != 2 || rep.startup <= 0 {
		t.Fatalf("report %+v", rep)
	}
	for _, l := range rep.levels {
		if l.direct.requests == 0 || l.relay.requests == 0 || l.fastRelay.requests == 0 || l.postern.requests == 0 ||
			l.relay.peakRSS <= 0 || l.fastRelay.peakRSS <= 0 || l.postern.peakRSS <= 0 ||
			l.postern.p99 < l.postern.p50 || l.postern.total < l.postern.requests {
			t.Errorf("%d conns: incomplete figures %+v", l.conns, l)
		}
	}
	var out bytes.Buffer
	rep.print(&out)
	for _, want := range []string{"relay net/http", "relay fasthttp", "postern", "vs direct", "added p50", "CPU/msg", "peak RSS", "postern start-up",
		"req/s vs direct at 2", "CPU per message at 2", "peak RSS at 2", "added p50 at 1 conn"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestMain lets the test binary serve as the relay child (see relay.go).
func TestMain(m *testing.M) {
	runRelayIfAsked()
	os.Exit(m.Run())
}
