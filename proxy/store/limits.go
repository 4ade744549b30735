package store

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/postern/postern/proxy/config"
)

// limitScript counts a request against a daily cap and one rate per key,
// all or nothing, in one step. It is the shared form of guard's local
// limits, with their answers:
//
//   - the daily cap (ARGV[2] > 0) lives at KEYS[1]: recipients counted on
//     this UTC day; n more pass only if used + n <= max. Checked first, as
//     guard checks daily_max before per_number.
//   - each remaining key is a token bucket of `burst` tokens refilled one
//     per `interval` µs — golang.org/x/time/rate's bucket, kept as GCRA's
//     theoretical arrival time (TAT, µs): a request at now passes if
//     max(TAT, now) + interval - now <= burst * interval. A key named twice
//     takes two tokens, as the local limiter does.
//
// Nothing is written unless everything passes. Returns 0 (admitted),
// 1 (daily cap) or 2 (rate).
var limitScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local dmax = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local dttl = tonumber(ARGV[4])
local interval = tonumber(ARGV[5])
local burst = tonumber(ARGV[6])
local first = 1
if dmax > 0 then
  local used = tonumber(redis.call('GET', KEYS[1]) or '0')
  if used + n > dmax then return 1 end
  first = 2
end
local tats = {}
local order = {}
if interval > 0 then
  for i = first, #KEYS do
    local k = KEYS[i]
    local tat = tats[k]
    if tat == nil then
      tat = tonumber(redis.call('GET', k) or '0')
      table.insert(order, k)
    end
    if tat < now then tat = now end
    local nt = tat + interval
    if nt - now > burst * interval then return 2 end
    tats[k] = nt
  end
end
if dmax > 0 then
  redis.call('INCRBY', KEYS[1], n)
  redis.call('EXPIRE', KEYS[1], dttl)
end
for _, k in ipairs(order) do
  local nt = tats[k]
  redis.call('SET', k, string.format('%.0f', nt), 'PX', math.floor((nt - now) / 1000) + 1)
end
return 0
`)

// Verdicts of Limit.
const (
	Admitted    = 0
	OverDaily   = 1
	OverRate    = 2
	dailyKeyTTL = 2 * 24 * time.Hour // a day's counter outlives its day by one
)

// Limit counts n recipients against dailyMax (0 = off) on now's UTC day
// and one request per key against rate (named by limit, e.g.
// "per_number"; off = none), all or nothing. keys are already hashed
// (see Hash). It returns Admitted, OverDaily or OverRate, or
// ErrUnavailable.
func (s *Store) Limit(ctx context.Context, now time.Time, dailyMax, n int, limit string, rate config.Rate, keys []string) (int, error) {
	interval, _ := interval(rate)
	if dailyMax == 0 && interval == 0 {
		return Admitted, nil
	}
	all := make([]string, 0, len(keys)+1)
	if dailyMax > 0 {
		all = append(all, s.dailyKey(now))
	}
	if interval > 0 {
		for _, k := range keys {
			all = append(all, s.key("rate", limit, k))
		}
	}
	args := []any{now.UnixMicro(), dailyMax, n, int64(dailyKeyTTL / time.Second), interval, rate.Count}
	var verdict int64
	err := s.do(ctx, func(ctx context.Context) error {
		v, err := limitScript.Run(ctx, s.rdb, all, args...).Int64()
		verdict = v
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(verdict), nil
}

// DailyUsed is how many recipients the store counted on now's UTC day
// (for tests and diagnostics).
func (s *Store) DailyUsed(ctx context.Context, now time.Time) (int, error) {
	var used int
	err := s.do(ctx, func(ctx context.Context) error {
		v, err := s.rdb.Get(ctx, s.dailyKey(now)).Result()
		if err != nil {
			return err
		}
		used, err = strconv.Atoi(v)
		return err
	})
	if err == redis.Nil {
		return 0, nil
	}
	return used, err
}
