package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postern/postern/internal/redistest"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/store"
)

// TestAdmitOneStep: Admit decides per_client, daily_max, per_number and
// the claim in one script, in that order of precedence. A message refused
// by per_client spends nothing; one refused by daily_max or per_number
// spends its per_client token only (as a per_client check of its own
// would have) and makes no claim; an admitted one spends everything and
// claims the message, or learns who holds it.
func TestAdmitOneStep(t *testing.T) {
	addr := redistest.Shared(t)
	prefix := redistest.Prefix(t, "admit")
	st := open(t, cluster(t, addr, prefix, time.Second), nil, nil)
	raw := redis.NewClient(&redis.Options{Addr: addr})
	defer raw.Close()
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ask := func(client string, numbers []string, claim string) store.Ask {
		return store.Ask{Now: now, Client: client, ClientRate: config.Rate{Count: 3, Per: time.Hour},
			DailyMax: 4, NumberRate: config.Rate{Count: 1, Per: time.Hour}, Numbers: numbers,
			Claim: claim, ClaimTTL: 10 * time.Second}
	}
	daily := func() string { v, _ := raw.Get(ctx, prefix+"daily:2026-03-01").Result(); return v }
	held := func(id string) string { v, _ := raw.Get(ctx, prefix+"msg:"+id).Result(); return v }

	// Admitted and claimed.
	a := ask("c1", []string{"n1"}, "m1")
	v, c, err := st.Admit(ctx, &a)
	if err != nil || v != store.Admitted || !c.Asked || c.Claim == nil || c.Held || c.Reply != nil {
		t.Fatalf("first message: verdict %d, %+v, %v; want admitted and claimed", v, c, err)
	}
	first := c.Claim
	if daily() != "1" || len(held("m1")) < 3 || held("m1")[:2] != "p:" {
		t.Fatalf("after the first message: daily %q, claim %q", daily(), held("m1"))
	}
	// The same message again while the first holds it: admitted (its
	// limits spent: n1 is now over per_number, so another number), told
	// the message is held, nothing claimed.
	a = ask("c1", []string{"n2"}, "m1")
	if v, c, err = st.Admit(ctx, &a); err != nil || v != store.Admitted || !c.Held || c.Claim != nil {
		t.Fatalf("message held elsewhere: verdict %d, %+v, %v", v, c, err)
	}
	if err := first.Finish(ctx, []byte("sent"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// per_number refuses: per_client spent, daily and the claim not.
	a = ask("c2", []string{"n1"}, "m2")
	if v, c, err = st.Admit(ctx, &a); err != nil || v != store.OverRate || c.Asked || c.Claim != nil {
		t.Fatalf("over per_number: verdict %d, %+v, %v", v, c, err)
	}
	if daily() != "2" || held("m2") != "" {
		t.Fatalf("a refused message spent: daily %q, claim %q", daily(), held("m2"))
	}
	// A finished message's repeat gets its reply (and spends its limits).
	a = ask("c2", []string{"n3"}, "m1")
	if v, c, err = st.Admit(ctx, &a); err != nil || v != store.Admitted || string(c.Reply) != "sent" || c.Claim != nil {
		t.Fatalf("repeat of a finished message: verdict %d, %+v, %v", v, c, err)
	}
	// daily_max (4) refuses two more recipients after three: nothing spent
	// beyond per_client; c2 has now spent all three of its tokens.
	a = ask("c2", []string{"n4", "n5"}, "m3")
	if v, _, err = st.Admit(ctx, &a); err != nil || v != store.OverDaily || daily() != "3" {
		t.Fatalf("over daily_max: verdict %d, daily %q, %v", v, daily(), err)
	}
	// per_client comes first and, refusing, spends nothing at all.
	a = ask("c2", []string{"n6"}, "m4")
	if v, c, err = st.Admit(ctx, &a); err != nil || v != store.OverClient || c.Asked || daily() != "3" || held("m4") != "" {
		t.Fatalf("over per_client: verdict %d, %+v, daily %q, %v", v, c, daily(), err)
	}
	// Without a client (per_client checked elsewhere) the same message passes.
	a = ask("", []string{"n6"}, "")
	if v, _, err = st.Admit(ctx, &a); err != nil || v != store.Admitted || daily() != "4" {
		t.Fatalf("without per_client: verdict %d, daily %q, %v", v, daily(), err)
	}
}

// TestAdmitStoreDown: a store that is down answers ErrUnavailable at
// once, with the claim asked for handed back (it may be made late).
func TestAdmitStoreDown(t *testing.T) {
	srv := redistest.Start(t)
	st := open(t, cluster(t, srv.Addr(), "down:", 100*time.Millisecond), nil, nil)
	srv.Kill()
	a := store.Ask{Now: time.Now(), DailyMax: 3, Numbers: []string{"n"}, Claim: "m", ClaimTTL: time.Second}
	v, c, err := st.Admit(context.Background(), &a)
	if !errors.Is(err, store.ErrUnavailable) || v != store.Admitted || c.Claim == nil || !errors.Is(c.Err, store.ErrUnavailable) {
		t.Fatalf("store down: verdict %d, %+v, %v", v, c, err)
	}
}
