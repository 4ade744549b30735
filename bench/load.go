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
	h2          bool
	maxUpstream int // postern's max_concurrent_upstream
	log         io.Writer
}

// result is one measured run at one connection count.
type result struct {
	requests int // in the measured window
	total    int // including the warm-up, for CPU per message
	elapsed  time.Duration
	p50, p99 time.Duration
	cpu      time.Duration // CPU the server process used over the whole run (relay, postern)
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
	conns                  int
	direct, relay, postern result
	peakRSS                int64
}

type report struct {
	startup time.Duration
	levels  []level
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
		body := fmt.Sprintf(`{"messages":[{"channel":"sms","to":"1555%07d","content":"Your password is %d-%d"}]}`, worker, worker, i)
		req, err := http.NewRequest(http.MethodPost, prov.srv.URL+"/v1/message", bytes.NewBufferString(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "tok-bench")
		return req, nil
	}

	rep := &report{}
	for _, n := range c.levels {
		lv := level{conns: n}
		for round := range c.rounds {
			fmt.Fprintf(c.log, "%d connections, round %d: direct...\n", n, round+1)
			d, err := drive(n, c.duration, &tls.Config{RootCAs: pool}, directReq)
			if err != nil {
				return nil, fmt.Errorf("direct: %w", err)
			}
			if d.rps() > lv.direct.rps() {
				lv.direct = d
			}
			fmt.Fprintf(c.log, "%d connections, round %d: relay...\n", n, round+1)
			rl, err := startRelay(prov.srv.URL, ca)
			if err != nil {
				return nil, err
			}
			relayReq := legacyRequest(rl.addr)
			cpu0, _ := processCPU(rl.cmd.Process.Pid)
			r, err := drive(n, c.duration, nil, relayReq)
			cpu1, cerr := processCPU(rl.cmd.Process.Pid)
			rl.stop()
			if err != nil {
				return nil, fmt.Errorf("relay: %w", err)
			}
			if cerr != nil {
				return nil, cerr
			}
			r.cpu = cpu1 - cpu0
			if r.rps() > lv.relay.rps() {
				lv.relay = r
			}
			fmt.Fprintf(c.log, "%d connections, round %d: postern...\n", n, round+1)
			// A fresh postern per run: its peak RSS belongs to this level.
			p, err := startPostern(c.bin, cfgPath)
			if err != nil {
				return nil, err
			}
			if rep.startup == 0 || p.startup < rep.startup {
				rep.startup = p.startup
			}
			cpu0, _ = processCPU(p.cmd.Process.Pid)
			r, err = drive(n, c.duration, nil, legacyRequest(p.addr))
			cpu1, cerr = processCPU(p.cmd.Process.Pid)
			rss, rerr := p.peakRSS()
			p.stop()
			if err != nil {
				return nil, fmt.Errorf("postern: %w", err)
			}
			if rerr != nil {
				return nil, rerr
			}
			if cerr != nil {
				return nil, cerr
			}
			r.cpu = cpu1 - cpu0
			if r.rps() > lv.postern.rps() {
				lv.postern, lv.peakRSS = r, rss
			}
		}
		rep.levels = append(rep.levels, lv)
	}
	return rep, nil
}

// legacyRequest is ISE's GET to addr (postern or the relay): every call a
// new message, each worker its own recipient.
func legacyRequest(addr string) request {
	return func(worker, i int) (*http.Request, error) {
		return http.NewRequest(http.MethodGet, "http://"+addr+"/http/sendmsg?user=ise&password=legacy&api_id=1&to=1555"+
			fmt.Sprintf("%07d", worker)+"&text=Your+password+is+"+strconv.Itoa(worker)+"-"+strconv.Itoa(i), nil)
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

func (r *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "conns\tdirect req/s\trelay req/s\tpostern req/s\tpostern/direct\tpostern/relay\t"+
		"direct p50\trelay p50\tpostern p50\tadded p50\tdirect p99\trelay p99\tpostern p99\t"+
		"relay CPU/msg\tpostern CPU/msg\tpostern peak RSS\t")
	for _, l := range r.levels {
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%.1f%%\t%.1f%%\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f MiB\t\n",
			l.conns, l.direct.rps(), l.relay.rps(), l.postern.rps(),
			100*l.postern.rps()/l.direct.rps(), 100*l.postern.rps()/l.relay.rps(),
			ms(l.direct.p50), ms(l.relay.p50), ms(l.postern.p50), ms(l.postern.p50-l.direct.p50),
			ms(l.direct.p99), ms(l.relay.p99), ms(l.postern.p99),
			us(l.relay.cpuPerMessage()), us(l.postern.cpuPerMessage()), float64(l.peakRSS)/(1<<20))
	}
	tw.Flush()
	fmt.Fprintf(w, "postern start-up (exec to listening): %s\n", ms(r.startup))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }
func us(d time.Duration) string { return fmt.Sprintf("%.0f us", float64(d.Nanoseconds())/1000) }
