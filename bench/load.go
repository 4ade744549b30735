package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"
)

type config struct {
	levels      []int
	duration    time.Duration
	rounds      int
	bin         string
	compare     string // a second postern binary measured in the same rounds ("" = none)
	h2          bool
	maxUpstream int    // postern's max_concurrent_upstream
	load        string // loadGo or loadWrk
	wrkThreads  int    // wrk's -t
	nginx       bool   // also measure the nginx+Lua reference (nginx.go), when installed
	log         io.Writer
}

// The load generators (-load).
const (
	loadGo  = "go"  // this program's own client, net/http (the default)
	loadWrk = "wrk" // wrk with a Lua script (wrk.go), as issue 13 measured
)

// result is one measured run at one connection count.
type result struct {
	requests int // in the measured window
	total    int // including the warm-up, for CPU per message
	elapsed  time.Duration
	p50, p99 time.Duration
	cpu      time.Duration // CPU the server process used over the whole run (relays, postern)
	peakRSS  int64         // the server process's VmHWM, bytes (relays, postern)
}

// cpuPerMessage is the server process's CPU time per message handled.
func (r result) cpuPerMessage() time.Duration {
	if r.total == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.total)
}

func (r result) rps() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

type level struct {
	conns int
	// direct: straight to the provider; relay: net/http relay; fastRelay:
	// fasthttp relay; ownRelay: the fasthttp relay doing postern's own
	// work; nginx: the nginx+Lua reference (nginx.go); postern: the server
	// under test.
	direct, relay, fastRelay, ownRelay, nginx, postern result
	compare                                            result // the -compare binary, if any
}

type report struct {
	startup        time.Duration
	compareStartup time.Duration // of the -compare binary
	levels         []level
}

// request makes the i-th request of a worker; every call is a new message.
type request func(worker, i int) (*http.Request, error)

func benchmark(c config) (*report, error) {
	prov := startProvider(c.h2)
	defer prov.srv.Close()
	dir, err := os.MkdirTemp("", "postern-bench")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if c.bin == "" {
		fmt.Fprintln(c.log, "building postern...")
		if c.bin, err = buildPostern(dir); err != nil {
			return nil, err
		}
	}
	ca, err := prov.caFile(dir)
	if err != nil {
		return nil, err
	}
	cfgPath := dir + "/bench.toml"
	cfg := fmt.Sprintf(`
[trust]
ca_files = [%q]

# The load is one client sending to few numbers, far beyond any sane
# guardrail: measure the pipeline, not the limits. max_concurrent_upstream
# is raised so the semaphore does not cap the connection count under test
# (-max-upstream 16 measures the default).
[server]
max_concurrent_upstream = %d
[limits]
per_number = "off"
per_client = "off"
daily_max = 0

[[route]]
name = "bench"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "%s/v1/message"
token = "tok-bench"
max_recipients = 1
`, ca, c.maxUpstream, prov.srv.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}

	pool := x509.NewCertPool()
	pool.AddCert(prov.srv.Certificate())
	directReq := func(worker, i int) (*http.Request, error) {
		body := fmt.Sprintf(`{"messages":[{"channel":"sms","to":"1201555%04d","content":"Your password is %d-%d"}]}`, worker%10000, worker, i)
		req, err := http.NewRequest(http.MethodPost, prov.srv.URL+"/v1/message", bytes.NewBufferString(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "tok-bench")
		return req, nil
	}

	var wrkLegacy, wrkDirect string
	if c.load == loadWrk {
		if wrkLegacy, wrkDirect, err = wrkScripts(dir); err != nil {
			return nil, err
		}
	}
	// load drives the legacy GET at addr (a relay or postern, process pid),
	// or the provider request at the provider when addr is "".
	load := func(pid, conns int, addr string) (result, error) {
		switch {
		case c.load == loadWrk && addr == "":
			return driveWrk(c.wrkThreads, 0, conns, c.duration, prov.srv.URL, wrkDirect)
		case c.load == loadWrk:
			return driveWrk(c.wrkThreads, pid, conns, c.duration, "http://"+addr, wrkLegacy)
		case addr == "":
			return drive(conns, c.duration, &tls.Config{RootCAs: pool}, directReq)
		}
		return measure(pid, conns, c.duration, legacyRequest(addr))
	}
	rep := &report{}
	for _, n := range c.levels {
		lv := level{conns: n}
		for round := range c.rounds {
			fmt.Fprintf(c.log, "%d connections, round %d: direct...\n", n, round+1)
			d, err := load(0, n, "")
			if err != nil {
				return nil, fmt.Errorf("direct: %w", err)
			}
			if d.rps() > lv.direct.rps() {
				lv.direct = d
			}
			for _, kind := range []string{relayNetHTTP, relayFastHTTP, relayOwnWork} {
				fmt.Fprintf(c.log, "%d connections, round %d: relay (%s)...\n", n, round+1, kind)
				rl, err := startRelay(kind, prov.srv.URL, ca, cfgPath)
				if err != nil {
					return nil, err
				}
				r, err := load(rl.cmd.Process.Pid, n, rl.addr)
				rl.stop()
				if err != nil {
					return nil, fmt.Errorf("relay (%s): %w", kind, err)
				}
				best := map[string]*result{relayNetHTTP: &lv.relay, relayFastHTTP: &lv.fastRelay, relayOwnWork: &lv.ownRelay}[kind]
				if r.rps() > best.rps() {
					*best = r
				}
			}
			if c.nginx {
				fmt.Fprintf(c.log, "%d connections, round %d: nginx+Lua...\n", n, round+1)
				ng, err := startNginx(dir, prov.srv.URL, ca)
				if err != nil {
					return nil, err
				}
				r, err := load(ng.cmd.Process.Pid, n, ng.addr)
				ng.stop()
				if err != nil {
					return nil, fmt.Errorf("nginx+Lua: %w", err)
				}
				if r.rps() > lv.nginx.rps() {
					lv.nginx = r
				}
			}
			bins := []string{c.bin}
			if c.compare != "" {
				bins = append(bins, c.compare)
			}
			for i, bin := range bins {
				fmt.Fprintf(c.log, "%d connections, round %d: %s...\n", n, round+1, bin)
				// A fresh postern per run: its peak RSS belongs to this level.
				p, err := startPostern(bin, cfgPath)
				if err != nil {
					return nil, err
				}
				best, startup := &lv.postern, &rep.startup
				if i == 1 {
					best, startup = &lv.compare, &rep.compareStartup
				}
				if *startup == 0 || p.startup < *startup {
					*startup = p.startup
				}
				r, err := load(p.cmd.Process.Pid, n, p.addr)
				p.stop()
				if err != nil {
					return nil, fmt.Errorf("postern %s: %w", bin, err)
				}
				if r.rps() > best.rps() {
					*best = r
				}
			}
		}
		rep.levels = append(rep.levels, lv)
	}
	return rep, nil
}

// measure drives the server process pid and adds its CPU time over the run
// and its peak RSS to the result.
func measure(pid, conns int, duration time.Duration, mk request) (result, error) {
	cpu0, err := processCPU(pid)
	if err != nil {
		return result{}, err
	}
	r, err := drive(conns, duration, nil, mk)
	if err != nil {
		return result{}, err
	}
	cpu1, err := processCPU(pid)
	if err != nil {
		return result{}, err
	}
	r.cpu = cpu1 - cpu0
	r.peakRSS, err = peakRSS(pid)
	return r, err
}

// legacyRequest is ISE's GET to addr (postern or the relay): every call a
// new message, each worker its own recipient. The recipients are US numbers
// in the 555 exchange (valid to libphonenumber, never assigned), as a US
// site's guests would be: the fictional area code 555 used before made
// every lookup try, and compile, all 25 regions sharing +1 — a worst case
// no site has (docs/benchmarks.md, "The wrk harness").
func legacyRequest(addr string) request {
	return func(worker, i int) (*http.Request, error) {
		return http.NewRequest(http.MethodGet, "http://"+addr+"/http/sendmsg?user=ise&password=legacy&api_id=1&to=1201555"+
			fmt.Sprintf("%04d", worker%10000)+"&text=Your+password+is+"+strconv.Itoa(worker)+"-"+strconv.Itoa(i), nil)
	}
}

// drive runs conns workers, each on its own keep-alive connection, for a
// warm-up of duration/10 and then duration, and measures the latter.
func drive(conns int, duration time.Duration, tlsConfig *tls.Config, mk request) (result, error) {
	warmup := duration / 10
	start := time.Now()
	measureFrom, stopAt := start.Add(warmup), start.Add(warmup+duration)
	ctx, cancel := context.WithDeadline(context.Background(), stopAt.Add(30*time.Second))
	defer cancel()
	var mu sync.Mutex
	var all []time.Duration
	var errs, total int
	var firstErr error
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			tr := &http.Transport{Proxy: nil, TLSClientConfig: tlsConfig, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1,
				DisableCompression: true}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			lat := make([]time.Duration, 0, 4096)
			n, done := 0, 0
			for i := 0; ; i++ {
				t0 := time.Now()
				if t0.After(stopAt) {
					break
				}
				req, err := mk(w, i)
				if err == nil {
					var resp *http.Response
					resp, err = client.Do(req.WithContext(ctx))
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if err == nil && resp.StatusCode/100 != 2 {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
				}
				if err == nil {
					done++
				}
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					n++
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			errs += n
			total += done
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(all) == 0 {
		return result{}, fmt.Errorf("no request succeeded (%d errors, first: %v)", errs, firstErr)
	}
	if errs > 0 {
		return result{}, fmt.Errorf("%d of %d requests failed, first: %v", errs, errs+len(all), firstErr)
	}
	slices.Sort(all)
	return result{requests: len(all), total: total, elapsed: duration, p50: all[len(all)/2], p99: all[len(all)*99/100]}, nil
}

// print writes one row per connection count and kind, then the issue 13
// targets with what this run measured.
func (r *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "conns\t\treq/s\tvs direct\tp50\tadded p50\tp99\tCPU/msg\tpeak RSS\t")
	for _, l := range r.levels {
		for _, k := range []struct {
			name string
			r    result
		}{{"direct", l.direct}, {"relay net/http", l.relay}, {"relay fasthttp", l.fastRelay}, {"relay+own work", l.ownRelay}, {"nginx+Lua", l.nginx}, {"postern", l.postern}, {"compare", l.compare}} {
			if k.r.requests == 0 {
				continue // no -compare, no nginx
			}
			cpu, rss := "-", "-"
			if k.name != "direct" {
				cpu, rss = us(k.r.cpuPerMessage()), fmt.Sprintf("%.1f MiB", float64(k.r.peakRSS)/(1<<20))
			}
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.2fx\t%s\t%s\t%s\t%s\t%s\t\n", l.conns, k.name, k.r.rps(), k.r.rps()/l.direct.rps(),
				ms(k.r.p50), ms(k.r.p50-l.direct.p50), ms(k.r.p99), cpu, rss)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "postern start-up (exec to listening): %s\n", ms(r.startup))
	if r.compareStartup > 0 {
		fmt.Fprintf(w, "compare start-up (exec to listening): %s\n", ms(r.compareStartup))
	}
	fmt.Fprintln(w, "targets (issue 13; throughput, CPU and memory at the most connections measured, 50 in the targets):")
	for i, l := range r.levels {
		if l.conns == 1 {
			fmt.Fprintf(w, "  added p50 at 1 conn      <= 0.150 ms  postern %s (relay net/http %s, relay fasthttp %s)\n",
				ms(l.postern.p50-l.direct.p50), ms(l.relay.p50-l.direct.p50), ms(l.fastRelay.p50-l.direct.p50))
		}
		if i != len(r.levels)-1 || l.conns == 1 {
			continue
		}
		nginx := ""
		if l.nginx.requests > 0 {
			nginx = fmt.Sprintf(", nginx+Lua %.2fx", l.nginx.rps()/l.direct.rps())
		}
		fmt.Fprintf(w, "  req/s vs direct at %-5d >= 0.45x     postern %.2fx (relay net/http %.2fx, relay fasthttp %.2fx, relay+own work %.2fx%s)\n",
			l.conns, l.postern.rps()/l.direct.rps(), l.relay.rps()/l.direct.rps(), l.fastRelay.rps()/l.direct.rps(), l.ownRelay.rps()/l.direct.rps(), nginx)
		fmt.Fprintf(w, "  CPU per message at %-5d <= 40 us     postern %s (relay net/http %s, relay fasthttp %s, relay+own work %s)\n",
			l.conns, us(l.postern.cpuPerMessage()), us(l.relay.cpuPerMessage()), us(l.fastRelay.cpuPerMessage()), us(l.ownRelay.cpuPerMessage()))
		fmt.Fprintf(w, "  peak RSS at %-5d        <= 30 MiB    postern %.1f MiB\n", l.conns, float64(l.postern.peakRSS)/(1<<20))
	}
	fmt.Fprintf(w, "  start-up                 < 100 ms     postern %s\n", ms(r.startup))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f us", float64(d.Nanoseconds())/1000) }
