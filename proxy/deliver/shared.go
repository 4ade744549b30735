package deliver

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/store"
	"github.com/postern/postern/rewrite"
)

// claimMargin is added to request_timeout for a claim's TTL: the claim
// outlives the longest send, and a replica that died mid-send frees the
// message soon after.
const claimMargin = 5 * time.Second

// UseStore makes d suppress duplicates across replicas through st ([cluster]):
// before sending, the message key is claimed in the store; an identical
// message already claimed by another replica is answered with that
// replica's reply (waited for while in flight, or kept for dedup_window
// after). The local single-flight stays the fast path in front of it.
// requestTimeout sizes the claim's TTL.
func (d *Deliverer) UseStore(st *store.Store, requestTimeout time.Duration) {
	d.store, d.claimTTL = st, requestTimeout+claimMargin
}

// deliverShared is Deliver's leader with a store: claim (unless c says
// how the claim asked with the limits went), then send (or take the reply
// another replica published). It fills dl.
func (d *Deliverer) deliverShared(ctx context.Context, route *config.Route, msg rewrite.Message, k Key, c store.Claimed, dl *Delivery) {
	st := d.store
	claim, reply, err := c.Claim, c.Reply, c.Err
	if !c.Asked || c.Held {
		// Not asked yet, or another replica holds the message in flight:
		// wait for its reply (or its release) as a claim of our own would.
		claim, reply, err = st.ClaimOrWait(ctx, hexKey(k), d.claimTTL)
	}
	switch {
	case reply != nil:
		dl.Store, dl.Joined = store.Redis, true
		if !decodeShared(reply, msg, dl) {
			dl.Result = failAll(msg, joinTimedOut())
		}
		return
	case errors.Is(err, store.ErrUnavailable):
		dl.Store = store.Local
		if st.Refuse() {
			dl.StoreDown = true
		} else {
			d.sendHere(ctx, route, msg, dl)
		}
		if claim != nil {
			// A stalled store may make the claim when it resumes: end it
			// then, or an identical request would wait for a reply that
			// never comes until the claim expires.
			var reply []byte // nil: nothing was sent, release
			if !dl.Busy && !dl.StoreDown {
				reply = encodeShared(dl)
			}
			claim.FinishWhenUp(reply, keepFor(dl, st), d.claimTTL)
		}
		return
	case err != nil:
		// Another replica holds the message and did not finish within
		// this request's deadline: as a local joiner would, say unknown.
		dl.Store, dl.Joined = store.Redis, true
		dl.Result = failAll(msg, joinTimedOut())
		return
	}
	dl.Store = store.Redis
	d.sendHere(ctx, route, msg, dl)
	// The reply is published even if the store failed a moment ago (the
	// claim may still be there), in the background: ISE's answer does not
	// wait for it. A failure here loses nothing: the message was sent
	// once, and the claim expires.
	if dl.Busy {
		claim.Release(ctx)
		return
	}
	claim.FinishLater(encodeShared(dl), keepFor(dl, st))
}

// giveUp ends a claim made with the limits (c) by a request that then
// joined an identical one in flight here: that one asked the store after
// this one, found the message claimed and waits for the claim to end, so
// it is released (in the background; nothing was sent under it).
func (d *Deliverer) giveUp(c store.Claimed) {
	switch {
	case c.Claim == nil:
	case c.Err != nil:
		c.Claim.FinishWhenUp(nil, 0, d.claimTTL)
	default:
		c.Claim.ReleaseLater()
	}
}

// keepFor is how long dl's reply is kept for identical requests:
// dedup_window when the message was (or may have been) sent; not at all
// when it certainly was not, so a later repeat sends (joiners in flight
// still get the answer).
func keepFor(dl *Delivery, st *store.Store) time.Duration {
	if dl.Busy || dl.StoreDown || !mayHaveSent(dl.Result) {
		return 0
	}
	return st.Cluster().DedupWindow
}

// hexKey names a message in the store.
func hexKey(k Key) string { return hex.EncodeToString(k[:]) }

// sendHere takes an upstream slot and sends through route and its
// fallback.
func (d *Deliverer) sendHere(ctx context.Context, route *config.Route, msg rewrite.Message, dl *Delivery) {
	release, ok := d.slots.acquire(ctx)
	if !ok {
		dl.Busy = true
		return
	}
	d.failover(ctx, route, msg, dl)
	release()
}

// mayHaveSent reports whether any recipient was (or may have been) sent,
// or taken by the sandbox: a repeat must then not be sent again.
func mayHaveSent(res rewrite.Result) bool {
	for _, rc := range res.Recipients {
		if rc.Err == nil || rc.Err.Outcome == rewrite.Unknown {
			return true
		}
	}
	return false
}

// sharedReply is a Delivery as another replica needs it to answer an
// identical request: without the numbers (the joiner has them, in the
// same order) and without attempts (the joiner made none).
type sharedReply struct {
	ID   string            `json:"id"`
	TLS  string            `json:"tls,omitempty"`
	Leaf string            `json:"leaf,omitempty"`
	R    []sharedRecipient `json:"r"`
}

type sharedRecipient struct {
	ID      string       `json:"id,omitempty"`
	Sandbox bool         `json:"sandbox,omitempty"`
	Err     *sharedError `json:"err,omitempty"`
}

type sharedError struct {
	Status      int    `json:"status"`
	Code        string `json:"code"`
	Description string `json:"desc"`
	Outcome     int    `json:"outcome"`
	Failover    bool   `json:"failover,omitempty"`
	Cause       string `json:"cause,omitempty"`
}

func encodeShared(dl *Delivery) []byte {
	r := sharedReply{ID: dl.ClientMsgID, TLS: dl.Info.TLSVersion, Leaf: dl.Info.LeafSHA256}
	for _, rc := range dl.Result.Recipients {
		sr := sharedRecipient{ID: rc.ID, Sandbox: rc.Sandbox}
		if e := rc.Err; e != nil {
			sr.Err = &sharedError{Status: e.Status, Code: e.Code, Description: e.Description, Outcome: int(e.Outcome), Failover: e.Failover}
			if e.Cause != nil {
				sr.Err.Cause = e.Cause.Error()
			}
		}
		r.R = append(r.R, sr)
	}
	b, _ := json.Marshal(r) // plain strings, ints and bools: cannot fail
	return b
}

// decodeShared fills dl from another replica's reply to msg; false when
// the reply is unreadable or for other recipients.
func decodeShared(b []byte, msg rewrite.Message, dl *Delivery) bool {
	var r sharedReply
	if err := json.Unmarshal(b, &r); err != nil || len(r.R) != len(msg.To) {
		return false
	}
	dl.ClientMsgID, dl.Info = r.ID, Info{TLSVersion: r.TLS, LeafSHA256: r.Leaf}
	dl.Result = rewrite.Result{Recipients: make([]rewrite.Recipient, len(r.R))}
	for i, sr := range r.R {
		rc := rewrite.Recipient{To: msg.To[i], ID: sr.ID, Sandbox: sr.Sandbox}
		if e := sr.Err; e != nil {
			rc.Err = &rewrite.Error{Status: e.Status, Code: e.Code, Description: e.Description,
				Outcome: rewrite.Outcome(e.Outcome), Failover: e.Failover}
			if e.Cause != "" {
				rc.Err.Cause = errors.New(e.Cause)
			}
		}
		dl.Result.Recipients[i] = rc
	}
	return true
}
