package store_test

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/postern/postern/internal/redistest"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/store"
)

// BenchmarkStore is each store operation a message makes, against a
// redis-server on loopback: the one script a message waits for (admit:
// per_client, per_number, daily_max and the claim) and the reply that
// ends the claim; and, on their own, the same script asked only
// per_number with daily_max (as the SMTP listener asks it at RCPT) and a
// claim with its reply.
//
//	go test -run='^$' -bench=Store ./proxy/store/
func BenchmarkStore(b *testing.B) {
	_, st, rate := benchStore(b)
	ctx := context.Background()
	b.Run("limit", func(b *testing.B) {
		for b.Loop() {
			a := store.Ask{Now: time.Now(), DailyMax: 1_000_000_000, NumberRate: rate, Numbers: []string{"k"}}
			if _, _, err := st.Admit(ctx, &a); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("admit+finish", func(b *testing.B) {
		run := strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
		i := 0
		h := store.NewHasher([]byte("bench"))
		client, numbers := h.Hash("127.0.0.1"), []string{h.Hash("15551234567")}
		for b.Loop() {
			i++
			a := store.Ask{Now: time.Now(), Client: client, ClientRate: rate, DailyMax: 1_000_000_000,
				NumberRate: rate, Numbers: numbers, Claim: run + strconv.Itoa(i), ClaimTTL: 10 * time.Second}
			v, c, err := st.Admit(ctx, &a)
			if err != nil || v != store.Admitted || c.Claim == nil {
				b.Fatal(v, err)
			}
			c.Claim.Finish(ctx, []byte("r"), time.Minute)
		}
	})
	b.Run("claim+finish", func(b *testing.B) {
		run := strconv.FormatInt(time.Now().UnixNano(), 36) + ":" // each run its own messages
		i := 0
		for b.Loop() {
			i++
			c, _, err := st.ClaimOrWait(ctx, run+strconv.Itoa(i), 10*time.Second)
			if err != nil || c == nil {
				b.Fatal(err)
			}
			c.Finish(ctx, []byte("r"), time.Minute)
		}
	})
}

// BenchmarkStoreConcurrent is a message's store work (Admit with every
// limit and a claim, then FinishLater, as the pipeline makes them) from
// 50 goroutines at once, against a redis-server on loopback: the
// client-side CPU a message costs with the pipe's batching, without
// sockets to ISE or the provider (cpu-µs/op: this process, all threads;
// redis-reads/op: redis-server's reads, one a batch).
//
//	go test -run='^$' -bench=StoreConcurrent ./proxy/store/
func BenchmarkStoreConcurrent(b *testing.B) {
	srv, st, rate := benchStore(b)
	ctx := context.Background()
	h := store.NewHasher([]byte("bench"))
	run := strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	var n atomic.Int64
	b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0)))
	rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	cpu, reads := processCPU(b), readsProcessed(b, rdb)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			a := store.Ask{Now: time.Now(), Client: h.Hash("127.0.0.1"), ClientRate: rate, DailyMax: 1_000_000_000,
				NumberRate: rate, Numbers: []string{h.Hash("1555123" + strconv.FormatInt(i%10000, 10))},
				Claim: run + strconv.FormatInt(i, 10), ClaimTTL: 10 * time.Second}
			v, c, err := st.Admit(ctx, &a)
			if err != nil || v != store.Admitted || c.Claim == nil {
				b.Fatal(v, err)
			}
			c.Claim.FinishLater([]byte(`{"status":202}`), time.Minute)
		}
	})
	b.StopTimer()
	if b.N >= 100 {
		b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		b.ReportMetric(float64(readsProcessed(b, rdb)-reads)/float64(b.N), "redis-reads/op")
	}
}

// benchStore starts a redis-server and a store on it, both ended with b,
// and gives a rate no benchmark reaches.
func benchStore(b *testing.B) (*redistest.Server, *store.Store, config.Rate) {
	srv := redistest.Start(b)
	st := open(b, cluster(nil, srv.Addr(), "bench:", time.Second), nil, nil)
	return srv, st, config.Rate{Count: 1_000_000_000, Per: time.Second}
}

// processCPU is this process's user+system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readsProcessed is how many reads from its clients rdb's redis-server
// has made.
func readsProcessed(b *testing.B, rdb *goredis.Client) int64 {
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_reads_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("INFO stats has no total_reads_processed")
	return 0
}
