package proxy_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/postern/postern/internal/redistest"
	"github.com/postern/postern/proxy"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/proxytest"
	goredis "github.com/redis/go-redis/v9"
)

// BenchmarkClusterPipeline is BenchmarkPipeline with every limit on
// (per_client, per_number, daily_max, set high enough never to refuse), once
// counted locally and once in a redis-server on loopback ([cluster]: one
// store round trip per message — per_client, per_number, daily_max and the
// duplicate claim in one script — plus its reply, published in the
// background; concurrent messages share round trips, store.pipe). The difference between the two is the store's cost per
// message. /50conns sends from 50 connections at once.
//
//	go test -run='^$' -bench=ClusterPipeline -benchmem ./proxy/
func BenchmarkClusterPipeline(b *testing.B) {
	providerURL, ca := benchProvider(b)
	redis := redistest.Start(b)
	// The floor for a store reached by round trips: local counting plus
	// one bare PING to the same redis-server before each message (the one
	// round trip a message waits for, without the script, keys or
	// postern's store code); what [cluster] adds beyond it is postern's.
	// Three PINGs are what a message waited for before the checks were
	// one script.
	pinger := goredis.NewClient(&goredis.Options{Addr: redis.Addr()})
	defer pinger.Close()
	for _, store := range []struct {
		name, cluster string
		pings         int
	}{
		{"local", "", 0},
		{"local+1ping", "", 1},
		{"local+3pings", "", 3},
		{"redis", fmt.Sprintf("[cluster]\nredis = %q\nkey_prefix = \"bench:\"\n", redis.URL()), 0},
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
			benchGet(b, client, base+strconv.FormatInt(n.Add(1), 10))
		}
		b.Run(store.name+"/1conn", func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxConnsPerHost: 1}}
			for b.Loop() {
				send(client)
			}
		})
		b.Run(store.name+"/50conns", func(b *testing.B) {
			// RunParallel starts parallelism × GOMAXPROCS goroutines.
			b.SetParallelism(max(1, 50/runtimeProcs()))
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
