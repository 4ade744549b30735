package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/testtool"
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
		if l.direct.requests == 0 || l.relay.requests == 0 || l.fastRelay.requests == 0 || l.ownRelay.requests == 0 || l.postern.requests == 0 ||
			l.relay.peakRSS <= 0 || l.fastRelay.peakRSS <= 0 || l.ownRelay.peakRSS <= 0 || l.postern.peakRSS <= 0 ||
			l.postern.p99 < l.postern.p50 || l.postern.total < l.postern.requests {
			t.Errorf("%d conns: incomplete figures %+v", l.conns, l)
		}
	}
	var out bytes.Buffer
	rep.print(&out)
	for _, want := range []string{"relay net/http", "relay fasthttp", "relay+own work", "postern", "vs direct", "added p50", "CPU/msg", "peak RSS", "postern start-up",
		"req/s vs direct at 2", "CPU per message at 2", "peak RSS at 2", "added p50 at 1 conn"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// TestBenchSmokeWrk is TestBenchSmoke with wrk as the load generator (-load
// wrk): its Lua scripts send what the Go generator sends, every request is
// answered 2xx (wrk counts anything else as an error, which fails the run),
// and the done() line is read into the same figures.
func TestBenchSmokeWrk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs postern")
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		if testtool.InCI() {
			t.Fatal("wrk is not installed, and CI (CI=true) requires its check: .ci/run installs it")
		}
		t.Skip("wrk is not installed (.ci/run installs it)")
	}
	// The nginx+Lua reference too where it is installed (CI installs it):
	// its CPU and memory are its master's and workers'.
	withNginx := nginxAvailable()
	rep, err := benchmark(config{levels: []int{1, 4}, duration: time.Second, rounds: 1, maxUpstream: 1000,
		load: loadWrk, wrkThreads: 2, nginx: withNginx, log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range rep.levels {
		rows := map[string]result{"direct": l.direct, "relay": l.relay, "fasthttp relay": l.fastRelay, "relay+own work": l.ownRelay, "postern": l.postern}
		if withNginx {
			rows["nginx+Lua"] = l.nginx
		}
		for name, r := range rows {
			if r.requests == 0 || r.p50 <= 0 || r.p99 < r.p50 || r.elapsed < 900*time.Millisecond {
				t.Errorf("%d conns, %s: incomplete figures %+v", l.conns, name, r)
			}
			if name != "direct" && (r.cpu <= 0 || r.peakRSS <= 0) {
				t.Errorf("%d conns, %s: no CPU or RSS figure %+v", l.conns, name, r)
			}
		}
	}
}

// TestParseWrk reads the scripts' done() line and refuses a run with errors
// or without the line.
func TestParseWrk(t *testing.T) {
	r, err := parseWrk("Running 1s test\n" + wrkResultPrefix + " 1200 1000123 250 900 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 1200 || r.total != 1200 || r.elapsed != 1000123*time.Microsecond || r.p50 != 250*time.Microsecond || r.p99 != 900*time.Microsecond {
		t.Errorf("parsed %+v", r)
	}
	for _, bad := range []string{"", "Requests/sec: 1000\n", wrkResultPrefix + " 10 1000000 5 9 3\n", wrkResultPrefix + " 0 1000000 0 0 0\n", wrkResultPrefix + " x\n"} {
		if _, err := parseWrk(bad); err == nil {
			t.Errorf("parseWrk(%q) accepted", bad)
		}
	}
}

// TestMain lets the test binary serve as the relay child (see relay.go).
func TestMain(m *testing.M) {
	runRelayIfAsked()
	os.Exit(m.Run())
}
