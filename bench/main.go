// Command bench is postern's load benchmark. It starts a TLS fake provider
// (offering HTTP/2, as real providers do) and the postern binary, then drives
// ISE-style legacy GETs at postern over loopback from many concurrent
// keep-alive connections — every request a different message — and, in the
// same run, sends the same load straight to the fake provider (the provider
// request over HTTPS keep-alive, as if ISE could speak it). It reports
// requests/s, p50/p99 latency, postern's peak RSS and start-up time, and
// postern's throughput as a ratio of the direct baseline.
//
//	go run ./bench                      # builds postern, 1 and 50 connections, 5s each
//	go run ./bench -conns 1,10,50 -duration 10s -rounds 3
//	go run ./bench -compare /tmp/postern-old    # before/after in one run
//	go run ./bench -load wrk            # wrk drives the load (issue 13's method)
//
// Besides direct and postern it measures reference relays (relay.go) and,
// when installed, nginx with Lua doing the same job (nginx.go).
//
// Load generator, fake provider and postern share the machine's cores, as
// they would in the targets in docs/benchmarks.md.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	runRelayIfAsked()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	conns := fs.String("conns", "1,50", "comma-separated numbers of concurrent keep-alive connections")
	duration := fs.Duration("duration", 5*time.Second, "measured time per run (after a warm-up of a tenth of it)")
	rounds := fs.Int("rounds", 1, "direct/postern run pairs per connection count; the best of each is reported")
	h2 := fs.Bool("h2", true, "the fake provider offers HTTP/2 (postern then uses it); false: HTTP/1.1 only")
	bin := fs.String("postern", "", "postern binary to run (default: go build the module in a temp dir)")
	compare := fs.String("compare", "", "a second postern binary (e.g. an older commit's) measured in the same rounds, row \"compare\"")
	loadGen := fs.String("load", loadGo, "load generator: \"go\" (this program's net/http client) or \"wrk\" (wrk with a Lua script, as issue 13 measured; apt-get install wrk)")
	wrkThreads := fs.Int("wrk-threads", 2, "wrk's threads (-load wrk; 2 is wrk's default and what issue 13 measured with)")
	maxUpstream := fs.Int("max-upstream", 1000, "postern's max_concurrent_upstream (16 is the default in production)")
	withNginx := fs.Bool("nginx", true, "also measure the nginx+Lua reference issue 13 set its target by, when nginx and its Lua module are installed (apt-get install nginx libnginx-mod-http-lua)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *loadGen != loadGo && *loadGen != loadWrk {
		fmt.Fprintf(stderr, "bench: -load is %q or %q, not %q\n", loadGo, loadWrk, *loadGen)
		return 2
	}
	var levels []int
	for _, s := range strings.Split(*conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "bench: bad -conns value %q\n", s)
			return 2
		}
		levels = append(levels, n)
	}
	rep, err := benchmark(config{levels: levels, duration: *duration, rounds: max(*rounds, 1), bin: *bin, compare: *compare, h2: *h2, maxUpstream: *maxUpstream, load: *loadGen, wrkThreads: max(*wrkThreads, 1),
		nginx: *withNginx && nginxAvailable(), log: stderr})
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	rep.print(stdout)
	return 0
}
