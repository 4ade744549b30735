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
	gs.store, gs.idKey = st, idKey
}

// shared runs one limit check in the store. handled is false when there
// is no store, or it is unavailable and the caller is to count locally.
func (gs *State) shared(ctx context.Context, now time.Time, dailyMax, n int, limit string, keys []string) (v Verdict, handled bool) {
	if gs.store == nil {
		return Verdict{}, false
	}
	rate := gs.g.PerNumber
	if limit == metrics.LimitPerClient {
		rate = gs.g.PerClient
	}
	if dailyMax == 0 && rate.Off() {
		return Verdict{}, true
	}
	hashed := make([]string, len(keys))
	for i, k := range keys {
		hashed[i] = store.Hash(gs.idKey, k)
	}
	verdict, err := gs.store.Limit(ctx, now, dailyMax, n, limit, rate, hashed)
	switch {
	case err != nil && gs.store.Refuse():
		return Verdict{Store: store.Local, Err: err}, true
	case err != nil:
		return Verdict{}, false
	case verdict == store.OverDaily:
		return Verdict{Store: store.Redis, Limit: metrics.LimitDailyMax}, true
	case verdict == store.OverRate:
		return Verdict{Store: store.Redis, Limit: limit}, true
	}
	return Verdict{Store: store.Redis}, true
}

// localLabel is the Store of a verdict this replica's own counters made.
func (gs *State) localLabel() string {
	if gs.store == nil {
		return ""
	}
	return store.Local
}
