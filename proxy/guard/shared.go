package guard

import (
	"context"
	"time"

	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/proxy/store"
)

// Verdict is what a rate check decided.
type Verdict struct {
	// Limit is the limit that refused (metrics.LimitPerClient,
	// metrics.LimitPerNumber, metrics.LimitDailyMax), "" when admitted.
	Limit string
	// Store says whose counters decided, with [cluster]: store.Redis (the
	// shared ones) or store.Local (this replica's, because the store was
	// unavailable); "" without [cluster] or when no limit applied.
	Store string
	// Err is store.ErrUnavailable when the store was unavailable and
	// on_store_error is "refuse": the request is refused, nothing counted.
	Err error
}

// UseStore makes per_client, per_number and daily_max count in st, shared
// with every replica using it ([cluster]); this State's own counters then
// only count while st is unavailable. idKey names numbers and clients in
// the store (store.Hash).
func (gs *State) UseStore(st *store.Store, idKey []byte) {
	gs.store, gs.hasher = st, store.NewHasher(idKey)
}

// shared runs one limit check in the store: per_client for keys[0]
// (perClient), or daily_max and per_number for the recipients keys. It is
// the store's one script (store.Admit) asked only that, through the same
// pipe as the messages AdmitAll decides. handled is false when there is
// no store, or it is unavailable and the caller is to count locally.
func (gs *State) shared(ctx context.Context, now time.Time, perClient bool, keys []string) (v Verdict, handled bool) {
	if gs.store == nil {
		return Verdict{}, false
	}
	ask := store.Ask{Now: now}
	switch {
	case perClient && gs.g.PerClient.Off(), !perClient && gs.g.DailyMax == 0 && gs.g.PerNumber.Off():
		return Verdict{}, true
	case perClient:
		ask.Client, ask.ClientRate = gs.hasher.Hash(keys[0]), gs.g.PerClient
	default:
		ask.DailyMax, ask.NumberRate = gs.g.DailyMax, gs.g.PerNumber
		ask.Numbers = make([]string, len(keys))
		for i, k := range keys {
			ask.Numbers[i] = gs.hasher.Hash(k)
		}
	}
	verdict, _, err := gs.store.Admit(ctx, &ask)
	switch {
	case err != nil && gs.store.Refuse():
		return Verdict{Store: store.Local, Err: err}, true
	case err != nil:
		return Verdict{}, false
	}
	return Verdict{Store: store.Redis, Limit: limitOf(verdict)}, true
}

// limitOf names the limit behind store.Admit's verdict ("" admitted).
func limitOf(verdict int) string {
	switch verdict {
	case store.OverClient:
		return metrics.LimitPerClient
	case store.OverDaily:
		return metrics.LimitDailyMax
	case store.OverRate:
		return metrics.LimitPerNumber
	}
	return ""
}

// localLabel is the Store of a verdict this replica's own counters made.
func (gs *State) localLabel() string {
	if gs.store == nil {
		return ""
	}
	return store.Local
}

// DefersClient reports whether the per_client check may wait for
// AdmitAll, so that a message delivered asks the store once: with a
// store that is up and per_client on. (Without a store, or while it is
// unavailable, AllowClient costs no round trip.)
func (gs *State) DefersClient() bool {
	return gs.store != nil && gs.store.Up() && !gs.g.PerClient.Off()
}

// AdmitAll is AllowClient (when withClient: its check was deferred,
// DefersClient), AdmitMessage and, with claim set, the message's
// duplicate claim, all in one store round trip. The verdict's Limit is
// the limit that refused, per_client first; a message refused spends
// nothing in the store beyond per_client (which AllowClient would have
// spent before the message was read), and makes no claim.
//
// The claim's state goes to deliver (Deliverer.DeliverClaimed). When the
// store fails, the claim asked for may still be made by a stalled store:
// if the message is refused here that claim is released once the store
// answers again (FinishWhenUp); if it is admitted, deliver ends it.
func (gs *State) AdmitAll(ctx context.Context, client string, withClient bool, to []string, claim string, claimTTL time.Duration) (Verdict, store.Claimed) {
	now := gs.now()
	if gs.store == nil {
		v := gs.localAll(now, client, withClient, to)
		return v, store.Claimed{}
	}
	ask := store.Ask{Now: now, DailyMax: gs.g.DailyMax, NumberRate: gs.g.PerNumber, Claim: claim, ClaimTTL: claimTTL}
	if withClient {
		ask.Client, ask.ClientRate = gs.hasher.Hash(client), gs.g.PerClient
	}
	limits := withClient && !gs.g.PerClient.Off() || gs.g.DailyMax > 0 || !gs.g.PerNumber.Off()
	if limits {
		ask.Numbers = make([]string, len(to))
		for i, n := range to {
			ask.Numbers[i] = gs.hasher.Hash(n)
		}
	}
	verdict, claimed, err := gs.store.Admit(ctx, &ask)
	if err == nil {
		if !limits {
			return Verdict{}, claimed // only the claim was asked: deliver labels it
		}
		return Verdict{Store: store.Redis, Limit: limitOf(verdict)}, claimed
	}
	// The store failed. Without limits asked, only the claim failed:
	// deliver falls back (or refuses) as it does for a claim of its own.
	if !limits {
		return Verdict{}, claimed
	}
	var v Verdict
	if gs.store.Refuse() {
		v = Verdict{Store: store.Local, Err: err}
	} else {
		v = gs.localAll(now, client, withClient, to)
	}
	if v.Err != nil || v.Limit != "" {
		if c := claimed.Claim; c != nil {
			c.FinishWhenUp(nil, 0, claimTTL) // refused: nothing will be sent
		}
		return v, store.Claimed{}
	}
	return v, claimed
}

// localAll is AdmitAll on this replica's own counters.
func (gs *State) localAll(now time.Time, client string, withClient bool, to []string) Verdict {
	v := Verdict{Store: gs.localLabel()}
	if withClient && !gs.perClient.allowAll(now, []string{client}) {
		v.Limit = metrics.LimitPerClient
		return v
	}
	if !gs.daily.take(now, len(to)) {
		v.Limit = metrics.LimitDailyMax
		return v
	}
	if !gs.perNumber.allowAll(now, to) {
		gs.daily.giveBack(now, len(to))
		v.Limit = metrics.LimitPerNumber
	}
	return v
}
