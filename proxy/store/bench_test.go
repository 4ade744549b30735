package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/postern/postern/internal/redistest"
	"github.com/postern/postern/proxy/config"
)

// BenchmarkStore is each store operation a message makes, against a
// redis-server on loopback: the limit script (per_number with daily_max),
// and a claim with its reply.
//
//	go test -run='^$' -bench=Store ./proxy/store/
func BenchmarkStore(b *testing.B) {
	srv := redistest.Start(b)
	st := open(nil, cluster(nil, srv.Addr(), "bench:", time.Second), nil, nil)
	defer st.Close()
	ctx := context.Background()
	rate := config.Rate{Count: 1_000_000_000, Per: time.Second}
	b.Run("limit", func(b *testing.B) {
		for b.Loop() {
			if _, err := st.Limit(ctx, time.Now(), 1_000_000_000, 1, "per_number", rate, []string{"k"}); err != nil {
				b.Fatal(err)
			}
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
