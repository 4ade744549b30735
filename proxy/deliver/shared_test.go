package deliver

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/store"
	"github.com/postern/postern/rewrite"
)

// TestSharedReplyKeptOnlyWhenSent: two deliverers on one store are two
// replicas. A delivered message's repeat at the other one is answered from
// the kept reply (joined, same id, no attempt, nothing sent); a message the
// provider refused is not kept, so its repeat is sent again; with
// dedup_window "off" nothing is kept at all.
func TestSharedReplyKeptOnlyWhenSent(t *testing.T) {
	mr := miniredis.RunT(t)
	u, _ := url.Parse("redis://" + mr.Addr() + "/0")
	for _, window := range []time.Duration{time.Minute, 0} {
		c := config.Cluster{Redis: u, KeyPrefix: window.String() + ":", OnStoreError: config.OnStoreErrorLocal,
			StoreTimeout: time.Second, DedupWindow: window}
		replica := func(tr http.RoundTripper) (*Deliverer, *config.Config) {
			d, cfg := newTestDeliverer(t, oneRoute, tr)
			st := store.New(c, nil, nil, nil)
			t.Cleanup(func() { st.Close() })
			d.UseStore(st, cfg.RequestTimeout)
			return d, cfg
		}
		refused := step{status: http.StatusBadRequest, body: `{"messages":[{"apiMessageId":"","accepted":false,"to":"15551234567","error":{"code":105,"description":"Invalid destination"}}],"error":null}`}
		trA := &scriptedTransport{steps: []step{oneAccepted("15551234567"), refused}}
		trB := &scriptedTransport{steps: []step{oneAccepted("15551234567"), refused}}
		a, cfg := replica(trA)
		b, cfgB := replica(trB)
		ctx := context.Background()
		sent := rewrite.Message{To: []string{"15551234567"}, Text: "code 1"}
		first := a.Deliver(ctx, cfg.Routes[0], sent)
		// The reply is published in the background: wait for it to be
		// kept (or, with the window off, for the claim to be gone).
		key := "msg:" + keyHex(a, cfg, sent)
		waitUntil(t, func() bool {
			v, _ := mr.Get(c.KeyPrefix + key)
			return window == 0 && v == "" || len(v) > 2 && v[:2] == "r:"
		})
		repeat := b.Deliver(ctx, cfgB.Routes[0], sent)
		switch window {
		case time.Minute:
			if !repeat.Joined || repeat.Store != store.Redis || len(repeat.Attempts) != 0 || len(trB.got) != 0 ||
				repeat.Result.Recipients[0].ID != first.Result.Recipients[0].ID || repeat.ClientMsgID != first.ClientMsgID {
				t.Fatalf("repeat within dedup_window: %+v, %d sent; want the first reply, joined", repeat, len(trB.got))
			}
		case 0:
			if repeat.Joined || len(trB.got) != 1 {
				t.Fatalf("dedup_window off: repeat %+v, %d sent; want sent again", repeat, len(trB.got))
			}
		}

		bad := rewrite.Message{To: []string{"15551234567"}, Text: "refused " + window.String()}
		trA.steps = []step{refused}
		a.Deliver(ctx, cfg.Routes[0], bad)
		key = "msg:" + keyHex(a, cfg, bad)
		waitUntil(t, func() bool { v, _ := mr.Get(c.KeyPrefix + key); return v == "" })
		before := len(trB.got)
		trB.steps = []step{oneAccepted("15551234567")}
		if again := b.Deliver(ctx, cfgB.Routes[0], bad); again.Joined || len(trB.got) != before+1 {
			t.Fatalf("repeat of a refused message: %+v; want sent again", again)
		}
	}
}

func keyHex(d *Deliverer, cfg *config.Config, m rewrite.Message) string {
	k := keyFor(d.macs, cfg.Routes[0].Name, m)
	return hexKey(k)
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClaimedJoinerGivesUpItsClaim: two identical requests here ask the
// store with their limits; the first to ask claims the message, but the
// other reaches deliver first and leads the local single-flight, waiting
// for the claim. The claimant, joining it, releases its claim, so the
// leader claims and sends once, and both answer with that one outcome.
func TestClaimedJoinerGivesUpItsClaim(t *testing.T) {
	mr := miniredis.RunT(t)
	u, _ := url.Parse("redis://" + mr.Addr() + "/0")
	tr := &scriptedTransport{steps: []step{oneAccepted("15551234567")}}
	d, cfg := newTestDeliverer(t, oneRoute, tr)
	st := store.New(config.Cluster{Redis: u, KeyPrefix: "j:", OnStoreError: config.OnStoreErrorLocal,
		StoreTimeout: time.Second, DedupWindow: time.Minute}, nil, nil, nil)
	t.Cleanup(func() { st.Close() })
	d.UseStore(st, cfg.RequestTimeout)
	route, msg := cfg.Routes[0], rewrite.Message{To: []string{"15551234567"}, Text: "code 7"}
	k := d.Key(route, msg)
	id, ttl := d.ClaimAsk(k)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, claimant, err := st.Admit(ctx, &store.Ask{Now: time.Now(), Claim: id, ClaimTTL: ttl})
	if err != nil || claimant.Claim == nil {
		t.Fatalf("first ask: %+v %v", claimant, err)
	}
	_, second, err := st.Admit(ctx, &store.Ask{Now: time.Now(), Claim: id, ClaimTTL: ttl})
	if err != nil || !second.Held {
		t.Fatalf("second ask: %+v %v; want the message held", second, err)
	}
	lead := make(chan Delivery, 1)
	go func() { lead <- d.DeliverClaimed(ctx, route, msg, k, second) }()
	waitUntil(t, func() bool { return d.joins.inFlight(k) })
	joined := d.DeliverClaimed(ctx, route, msg, k, claimant)
	leader := <-lead
	if leader.Joined || leader.Store != store.Redis || leader.Result.Recipients[0].Err != nil || len(tr.got) != 1 {
		t.Fatalf("leader: %+v, %d sent; want it sent once", leader, len(tr.got))
	}
	if !joined.Joined || joined.Result.Recipients[0].ID != leader.Result.Recipients[0].ID {
		t.Fatalf("claimant: %+v; want the leader's outcome, joined", joined)
	}
}
