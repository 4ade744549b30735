package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postern/postern/proxy/config"
)

// admitScript is a message's every decision in the store in one step, so
// that a message that is delivered waits for one round trip: per_client,
// then daily_max, then per_number (the order and the answers of guard's
// local limits), then the duplicate claim. It is every limit decision the
// store makes: a check of per_client alone (a request refused before its
// guard step, an SMTP MAIL), of daily_max and per_number alone (an SMTP
// RCPT or DATA) or a claim alone (ClaimOrWait) is this script with the
// other parts left out.
//
// KEYS: [per_client bucket] [daily counter] per_number buckets... [claim].
// ARGV: now (µs), per_client interval (µs, 0: no per_client key) and
// burst, daily max (0: no daily key), recipients, the daily key's TTL (s),
// per_number interval (0: no per_number keys) and burst, the claim's owner
// ("": no claim key) and TTL (ms).
//
// per_client is spent once it admits, whatever follows, as when it was
// decided on its own before the message was read (guard.AllowClient). A
// message refused by daily_max or per_number spends nothing more; one
// admitted spends its limits even when an identical message holds the
// claim (a duplicate that joins another's result counts as the message it
// is, as it did with separate steps).
//
// Every redis.call is a good part of the script's cost in the store (the
// store's CPU is most of what [cluster] costs a message), so the common
// case, a message admitted and claimed, makes six: per_client's GET and
// SET, the day's INCRBY (taken back by DECRBY when a later limit refuses;
// EXPIRE only when INCRBY made the key, whose TTL nothing else changes),
// per_number's GET and SET, and the claim's SET NX (GET only when it is
// taken).
//
// Returns "c" (admitted; claimed when a claim was asked), "k"
// (per_client), "d" (daily_max), "n" (per_number), or, admitted but the
// claim taken, what the claim key holds ("p:<owner>" in flight, "r:<reply>"
// finished).
var admitScript = newLuaScript(`
local now = tonumber(ARGV[1])
local function take(tat, interval, burst)
  if tat < now then tat = now end
  local nt = tat + interval
  if nt - now > burst * interval then return nil end
  return nt
end
local function put(k, nt)
  redis.call('SET', k, string.format('%.0f', nt), 'PX', math.floor((nt - now) / 1000) + 1)
end
local owner = ARGV[9]
local first, last = 1, #KEYS
if owner ~= '' then last = last - 1 end
local ci = tonumber(ARGV[2])
if ci > 0 then
  local nt = take(tonumber(redis.call('GET', KEYS[1])) or 0, ci, tonumber(ARGV[3]))
  if not nt then return 'k' end
  put(KEYS[1], nt)
  first = 2
end
local dkey, n = nil, tonumber(ARGV[5])
local dmax = tonumber(ARGV[4])
if dmax > 0 then
  dkey = KEYS[first]
  local used = redis.call('INCRBY', dkey, n)
  if used == n then redis.call('EXPIRE', dkey, ARGV[6]) end
  if used > dmax then
    redis.call('DECRBY', dkey, n)
    return 'd'
  end
  first = first + 1
end
local ni = tonumber(ARGV[7])
if ni > 0 and first <= last then
  local nb = tonumber(ARGV[8])
  local tats = {}
  for i = first, last do
    local k = KEYS[i]
    local nt = take(tats[k] or tonumber(redis.call('GET', k)) or 0, ni, nb)
    if not nt then
      if dkey then redis.call('DECRBY', dkey, n) end
      return 'n'
    end
    tats[k] = nt
  end
  for i = first, last do -- in KEYS' order, each key once
    local k = KEYS[i]
    if tats[k] then
      put(k, tats[k])
      tats[k] = nil
    end
  end
end
if owner ~= '' then
  local k = KEYS[#KEYS]
  if redis.call('SET', k, 'p:' .. owner, 'NX', 'PX', ARGV[10]) then return 'c' end
  return redis.call('GET', k)
end
return 'c'
`)

// Ask is one message's decisions for Admit. Clients and numbers are
// already hashed (Hasher).
type Ask struct {
	Now time.Time
	// Client is asked of per_client at ClientRate when ClientRate is on
	// and Client is not "".
	Client     string
	ClientRate config.Rate
	// DailyMax (0: off) counts len(Numbers) recipients on Now's UTC day;
	// NumberRate (off: none) takes one token per number.
	DailyMax   int
	NumberRate config.Rate
	Numbers    []string
	// Claim asks for the message's claim (ClaimOrWait's id and ttl) once
	// the limits admit it; "" asks for none.
	Claim    string
	ClaimTTL time.Duration
}

// Verdicts of Admit.
const (
	Admitted   = 0
	OverDaily  = 1 // daily_max
	OverRate   = 2 // per_number
	OverClient = 3 // per_client

	dailyKeyTTL = 2 * 24 * time.Hour // a day's counter outlives its day by one
)

// Claimed is what the store said about a message's claim (Ask.Claim).
type Claimed struct {
	// Asked: a claim was asked for in the same step as the limits.
	Asked bool
	// Claim: this replica holds the message and must Finish or Release
	// it; with Err set, the claim was asked of a store that failed and may
	// have been made (see FinishWhenUp).
	Claim *Claim
	// Reply: an identical message finished within dedup_window; its reply.
	Reply []byte
	// Held: another replica holds the message in flight (ClaimOrWait
	// waits for it).
	Held bool
	// Err is ErrUnavailable when the store failed.
	Err error
}

// Admit decides a message's per_client, daily_max, per_number and claim
// in one script (admitScript): one round trip, shared with the Admits
// made at the same moment (pipe). It returns the verdict
// (Admitted, OverClient, OverDaily, OverRate for per_number) and, when
// a's Claim was asked and the limits admitted the message, the claim's
// state. On a store failure the error is ErrUnavailable and Claimed
// carries the claim asked for (Err set).
func (s *Store) Admit(ctx context.Context, a *Ask) (int, Claimed, error) {
	ci, cb := interval(a.ClientRate)
	if a.Client == "" {
		ci = 0
	}
	ni, nb := interval(a.NumberRate)
	c := &call{}
	keys := c.strs[:0]
	if ci > 0 {
		keys = append(keys, s.clientKey+a.Client)
	}
	if a.DailyMax > 0 {
		keys = append(keys, s.dailyKey(a.Now))
	}
	if ni > 0 {
		for _, k := range a.Numbers {
			keys = append(keys, s.numberKey+k)
		}
	}
	var claimed Claimed
	owner := ""
	if a.Claim != "" {
		owner = newOwner()
		key := s.msgKey + a.Claim
		keys = append(keys, key)
		claimed = Claimed{Asked: true, Claim: &Claim{s: s, key: key, id: a.Claim, owner: owner}}
	}
	if len(keys) == 0 {
		return Admitted, Claimed{}, nil
	}
	c.admit(append(keys, owner), [9]int64{a.Now.UnixMicro(), ci, int64(cb), int64(a.DailyMax), int64(len(a.Numbers)),
		int64(dailyKeyTTL / time.Second), ni, int64(nb), a.ClaimTTL.Milliseconds()})
	var got string
	var ok bool
	err := s.do(ctx, func(ctx context.Context) error {
		v, err := s.pipe.run(ctx, c, hold)
		if err != nil {
			return err
		}
		got, ok = v.(string)
		if !ok {
			return fmt.Errorf("admit script replied %T, want a string", v)
		}
		return nil
	})
	if err != nil {
		claimed.Err = err
		return Admitted, claimed, err
	}
	switch {
	case got == "k":
		return OverClient, Claimed{}, nil
	case got == "d":
		return OverDaily, Claimed{}, nil
	case got == "n":
		return OverRate, Claimed{}, nil
	case strings.HasPrefix(got, resultPrefix):
		return Admitted, Claimed{Asked: true, Reply: []byte(got[len(resultPrefix):])}, nil
	case strings.HasPrefix(got, pendingPrefix):
		return Admitted, Claimed{Asked: true, Held: true}, nil
	}
	return Admitted, claimed, nil
}

// admit makes c admitScript's call: strs is KEYS then the owner, ints
// ARGV's numbers in their order (the owner left out). Numbers go as
// int64s, which go-redis writes without formatting.
func (c *call) admit(strs []string, ints [9]int64) {
	n := len(strs) - 1
	c.ints = ints
	c.command(admitScript, n)
	for i := range n {
		c.argv = append(c.argv, &strs[i])
	}
	for i := range 8 {
		c.argv = append(c.argv, &c.ints[i])
	}
	c.argv = append(c.argv, &strs[n], &c.ints[8])
}

// interval is rate's token interval in µs and its burst; 0 when off.
func interval(rate config.Rate) (int64, int) {
	if rate.Off() {
		return 0, 0
	}
	return max(1, rate.Per.Microseconds()/int64(rate.Count)), rate.Count
}

// AdmitScript is the script Admit runs, for benchmarks that run it from a
// bare client to tell its cost in the store from postern's store code
// (proxy's BenchmarkClusterPipeline, local+script). Its keys and
// arguments are admitScript's.
func AdmitScript() *redis.Script { return admitScript.Script }

// FinishScript is the script that ends a claim (FinishLater's), for the
// same benchmarks. ARGV: owner, payload ("r:<reply>"), keep (ms), channel.
func FinishScript() *redis.Script { return finishScript.Script }
