package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/postern/postern/internal/redistest"
	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/proxytest"
	"github.com/postern/postern/proxy/store"
	goredis "github.com/redis/go-redis/v9"
	"github.com/valkey-io/valkey-go"
)

// BenchmarkClusterPipeline is BenchmarkPipeline with every limit on
// (per_client, per_number, daily_max, set high enough never to refuse), once
// counted locally and once in a redis-server on loopback ([cluster]: one
// store round trip per message — per_client, per_number, daily_max and the
// duplicate claim in one script — plus its reply, which goes with the
// next store call; concurrent messages share round trips, store.pipe).
// The difference between the two is the store's cost per message.
// /50conns sends from 50 connections at once. Besides wall time, each
// reports CPU time per message, its own and redis-server's
// (cpuPerMessage): on a shared machine the steadier measure.
//
//	go test -run='^$' -bench=ClusterPipeline -benchtime=4000x ./proxy/
func BenchmarkClusterPipeline(b *testing.B) {
	providerURL, ca := benchProvider(b)
	redis := redistest.Start(b)
	// The floor for a store reached by round trips: local counting plus
	// one bare PING to the same redis-server before each message (the one
	// round trip a message waits for, without the script, keys or
	// postern's store code); what [cluster] adds beyond it is postern's.
	// Three PINGs are what a message waited for before the checks were
	// one script.
	//
	// local+script is local counting plus the store's own script
	// (store.AdmitScript: per_client, daily_max, per_number and a fresh
	// claim, admitted) run from the same bare client on fixed keys before
	// each message: the script's cost in redis-server and one round trip,
	// without postern's store code or the reply that ends the claim.
	pinger := goredis.NewClient(&goredis.Options{Addr: redis.Addr()})
	defer pinger.Close()
	var refClaims atomic.Int64
	script := func() error {
		day := time.Now().UTC().Format(time.DateOnly)
		keys := []string{"ref:rate:per_client:c", "ref:daily:" + day, "ref:rate:per_number:n", "ref:msg:" + strconv.FormatInt(refClaims.Add(1), 10)}
		// now (µs), per_client interval and burst, daily max, recipients,
		// daily TTL (s), per_number interval and burst, owner, claim TTL
		// (ms): the values the redis run's limits and claims give.
		return store.AdmitScript().Run(context.Background(), pinger, keys, time.Now().UnixMicro(), 1, 1_000_000_000,
			1_000_000_000, 1, 172800, 1, 1_000_000_000, "0123456789abcdef01234567", 15000).Err()
	}
	// local+valkey-ping is local+1ping with the PING sent by valkey-go
	// (automatic pipelining: concurrent calls share a write and a read).
	// local+valkey is local+script with the script sent by valkey-go
	// (automatic pipelining: concurrent calls share a write and a read,
	// commands built without boxing their arguments) and the claim's end
	// (store.FinishScript, with a reply to keep) sent the same way after
	// the message: the floor for postern's store path with another
	// maintained client.
	vk, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{redis.Addr()}, DisableCache: true})
	if err != nil {
		b.Fatal(err)
	}
	defer vk.Close()
	admitSHA, finishSHA := store.AdmitScript().Hash(), store.FinishScript().Hash()
	if err := store.AdmitScript().Load(context.Background(), pinger).Err(); err != nil {
		b.Fatal(err)
	}
	if err := store.FinishScript().Load(context.Background(), pinger).Err(); err != nil {
		b.Fatal(err)
	}
	valkeyScript := func() (claim string, err error) {
		day := time.Now().UTC().Format(time.DateOnly)
		claim = "vref:msg:" + strconv.FormatInt(refClaims.Add(1), 10)
		cmd := vk.B().Evalsha().Sha1(admitSHA).Numkeys(4).
			Key("vref:rate:per_client:c", "vref:daily:"+day, "vref:rate:per_number:n", claim).
			Arg(strconv.FormatInt(time.Now().UnixMicro(), 10), "1", "1000000000", "1000000000", "1", "172800", "1", "1000000000",
				"0123456789abcdef01234567", "15000").Build()
		return claim, vk.Do(context.Background(), cmd).Error()
	}
	valkeyFinish := func(claim string) error {
		cmd := vk.B().Evalsha().Sha1(finishSHA).Numkeys(1).Key(claim).
			Arg("0123456789abcdef01234567", `r:{"status":202,"body":"ok"}`, "120000", "vref:done:"+claim).Build()
		return vk.Do(context.Background(), cmd).Error()
	}
	for _, store := range []struct {
		name, cluster string
		pings         int
		script        bool
		valkey        string // "ping": a PING; "script": the two scripts
	}{
		{"local", "", 0, false, ""},
		{"local+1ping", "", 1, false, ""},
		{"local+3pings", "", 3, false, ""},
		{"local+script", "", 0, true, ""},
		{"local+valkey-ping", "", 0, false, "ping"},
		{"local+valkey", "", 0, false, "script"},
		{"redis", fmt.Sprintf("[cluster]\nredis = %q\nkey_prefix = \"bench:\"\n", redis.URL()), 0, false, ""},
	} {
		cfg, err := config.Load("bench.toml", []byte(fmt.Sprintf(`%s
[trust]
ca_files = [%q]
[server]
max_concurrent_upstream = 1000
[limits]
per_number = "1000000000/1s"
per_client = "1000000000/1s"
daily_max = 1000000000
[[route]]
name = "bench"
match_path = "/http/sendmsg"
inbound = "clickatell-http"
provider = "clickatell-one"
endpoint = "%s/v1/message"
token = "tok-bench"
`, store.cluster, ca, providerURL)), config.LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		discard := slog.New(slog.NewJSONHandler(io.Discard, nil))
		srv := proxy.New(cfg, proxy.Options{Log: discard, Audit: discard})
		addr, stop := proxytest.Serve(b, srv)
		base := "http://" + addr + "/http/sendmsg?user=ise&password=legacy&api_id=1&to=15551234567&text=" + store.name + "+"
		var n atomic.Int64
		send := func(client *http.Client) {
			for range store.pings {
				if err := pinger.Ping(context.Background()).Err(); err != nil {
					b.Fatal(err)
				}
			}
			if store.script {
				if err := script(); err != nil {
					b.Fatal(err)
				}
			}
			var claim string
			switch store.valkey {
			case "ping":
				if err := vk.Do(context.Background(), vk.B().Ping().Build()).Error(); err != nil {
					b.Fatal(err)
				}
			case "script":
				var err error
				if claim, err = valkeyScript(); err != nil {
					b.Fatal(err)
				}
			}
			benchGet(b, client, base+strconv.FormatInt(n.Add(1), 10))
			if store.valkey == "script" {
				if err := valkeyFinish(claim); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run(store.name+"/1conn", func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxConnsPerHost: 1}}
			defer cpuPerMessage(b, pinger)()
			for b.Loop() {
				send(client)
			}
		})
		b.Run(store.name+"/50conns", func(b *testing.B) {
			// RunParallel starts parallelism × GOMAXPROCS goroutines.
			b.SetParallelism(max(1, 50/runtimeProcs()))
			defer cpuPerMessage(b, pinger)()
			b.RunParallel(func(pb *testing.PB) {
				client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxConnsPerHost: 1}}
				for pb.Next() {
					send(client)
				}
			})
		})
		stop()
		srv.Close()
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// cpuPerMessage starts counting the CPU time of the benchmark's process
// (the clients, postern and the fake provider: user+system, all threads)
// and of the redis-server rdb talks to (INFO cpu), and returns the func
// that reports both per message (cpu-µs/op, redis-µs/op), the time
// redis-server spent running scripts (script-µs/op: INFO commandstats'
// usec of EVAL and EVALSHA, reset at the start; it counts the commands
// the scripts call, which are logged again on their own) and each
// command's calls and time. CPU time rather than wall time: on a shared
// machine other processes stretch the wall clock, not this one's CPU time.
func cpuPerMessage(b *testing.B, rdb *goredis.Client) func() {
	ctx := context.Background()
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	self, server := processCPU(b), redisCPU(b, rdb)
	io, sw := processIO(b), switches(b)
	return func() {
		if b.N < 100 { // the probing run of one message
			return
		}
		n := float64(b.N)
		b.ReportMetric(float64((processCPU(b)-self).Microseconds())/n, "cpu-µs/op")
		b.ReportMetric(float64((redisCPU(b, rdb)-server).Microseconds())/n, "redis-µs/op")
		// The system calls that move bytes (read and write class, all
		// sockets of the process: clients, postern, the provider, the
		// store) and the times a thread went to sleep: what a round trip
		// to the store costs besides its bytes.
		b.ReportMetric(float64(processIO(b)-io)/n, "rw-calls/op")
		b.ReportMetric(float64(switches(b)-sw)/n, "sleeps/op")
		// redis-server's reads from its clients since CONFIG RESETSTAT:
		// with the pipe, a batch is one.
		b.ReportMetric(float64(redisStat(b, rdb, "stats", "total_reads_processed:"))/n, "redis-reads/op")
		cmds, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			b.Fatal(err)
		}
		var calls []string
		scripts := 0
		for _, line := range strings.Split(cmds, "\r\n") {
			// cmdstat_evalsha:calls=5000,usec=61234,usec_per_call=12.25,...
			name, stats, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
			if !ok || name == "config|resetstat" || name == "info" {
				continue
			}
			c, rest, _ := strings.Cut(stats, ",usec=")
			u, _, _ := strings.Cut(rest, ",")
			if name == "eval" || name == "evalsha" {
				us, _ := strconv.Atoi(u)
				scripts += us
			}
			calls = append(calls, fmt.Sprintf("%s %s calls %s µs", name, c, u))
		}
		b.ReportMetric(float64(scripts)/n, "script-µs/op")
		if len(calls) > 0 {
			b.Logf("redis commands over %d messages: %s", b.N, strings.Join(calls, "; "))
		}
	}
}

// processCPU is this process's user+system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processIO is this process's read and write class system calls so far
// (/proc/self/io's syscr + syscw).
func processIO(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(string(data), "\n") {
		for _, k := range []string{"syscr: ", "syscw: "} {
			if v, ok := strings.CutPrefix(line, k); ok {
				c, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					b.Fatal(err)
				}
				total += c
			}
		}
	}
	return total
}

// switches is how often this process's threads gave up their CPU
// voluntarily (slept in futex, epoll_wait, ...) so far.
func switches(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Nvcsw
}

// redisStat is the integer field key (with its colon) of rdb's INFO section.
func redisStat(b *testing.B, rdb *goredis.Client, section, key string) int64 {
	info, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			c, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return c
		}
	}
	b.Fatalf("INFO %s has no %s", section, key)
	return 0
}

// redisCPU is rdb's redis-server's user+system CPU time so far.
func redisCPU(b *testing.B, rdb *goredis.Client) time.Duration {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	for _, line := range strings.Split(info, "\r\n") {
		for _, k := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				s, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatal(err)
				}
				total += time.Duration(s * float64(time.Second))
			}
		}
	}
	return total
}
