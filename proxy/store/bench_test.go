package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

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
	srv := redistest.Start(b)
	st := open(nil, cluster(nil, srv.Addr(), "bench:", time.Second), nil, nil)
	defer st.Close()
	ctx := context.Background()
	rate := config.Rate{Count: 1_000_000_000, Per: time.Second}
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
