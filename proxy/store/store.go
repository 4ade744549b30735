// Package store is the state replicas share through Redis (or Valkey),
// [cluster] in the config: the counters behind per_number, per_client and
// daily_max, and the claims and replies behind duplicate suppression
// across replicas. Every counter and window is changed by one Lua script
// in the store, atomically, never read and written back from Go.
//
// A store that is down, slower than store_timeout or refusing is reported
// as ErrUnavailable; the caller then counts on its own (on_store_error =
// "local") or refuses the message ("refuse"). After the first failure the
// store is not asked again until a background probe finds it answering, so
// an outage costs each message nothing and recovery is noticed within
// probeInterval.
package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/postern/postern/internal/macpool"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/metrics"
	"github.com/postern/postern/trust"
)

// Which counters decided, for the audit line's "store".
const (
	Redis = "redis" // the shared store
	Local = "local" // this replica's own, because the store was unavailable
)

// Note combines the store labels of one message's steps for its audit
// line: "local" once any step fell back to this replica's counters, else
// the latest label ("" while no step used a store).
func Note(prev, step string) string {
	if step != "" && prev != Local {
		return step
	}
	return prev
}

// ErrUnavailable: the store did not answer in time, is down, or refused.
var ErrUnavailable = errors.New("shared store unavailable")

// probeInterval is how often a store marked unavailable is pinged.
const probeInterval = 250 * time.Millisecond

// logEvery bounds how often a fallback (and a recovery) is logged.
const logEvery = time.Minute

// Store is one connection pool to the shared store with its health. A
// server keeps one across reloads while [cluster] does not change.
type Store struct {
	rdb     *redis.Client
	cluster config.Cluster
	log     *slog.Logger
	m       *metrics.Metrics

	up      atomic.Bool
	mu      sync.Mutex // guards what follows
	probing bool
	closed  bool
	lastLog map[string]time.Time // by message, for once-a-minute logging
	stop    chan struct{}
	wg      sync.WaitGroup
	pipe    *pipe // Admit's and Finish's calls, sent together when they arrive together (or later)

	// Key prefixes under key_prefix, joined once rather than per message.
	clientKey, numberKey, msgKey, doneKey, dayPrefix string
	day                                              atomic.Pointer[dayName] // the daily counter's key, for the UTC day it names
}

// dayName is the daily counter's key for one UTC day (dayKey).
type dayName struct {
	day int
	key string
}

// New connects to c's store (TLS verified against roots for rediss://)
// and pings it once, bounded by store_timeout, so the state is known from
// the start. It never fails: an unreachable store starts unavailable.
func New(c config.Cluster, roots *trust.Roots, log *slog.Logger, m *metrics.Metrics) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	quietOnce.Do(func() { redis.SetLogger(quiet{}) })
	if m == nil {
		m = metrics.New(metrics.BuildInfo{})
	}
	s := &Store{rdb: redis.NewClient(clientOptions(c, roots)), cluster: c, log: log, m: m,
		lastLog: map[string]time.Time{}, stop: make(chan struct{})}
	s.clientKey, s.numberKey = s.key("rate", "per_client", ""), s.key("rate", "per_number", "")
	s.msgKey, s.doneKey, s.dayPrefix = s.key("msg", ""), s.key("done", ""), s.key("daily", "")
	s.pipe = newPipe(s.rdb, c.StoreTimeout)
	s.up.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), c.StoreTimeout)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		s.fail(err)
	} else {
		m.StoreUp(true)
	}
	return s
}

// go-redis logs each failed dial and reconnect itself, in plain text, to
// the standard logger: several lines a second while the store is down. The
// store logs its state once a minute instead (logLimited); go-redis's
// logger is process-wide, so it is silenced once.
var quietOnce sync.Once

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// clientOptions turns [cluster] into go-redis options. Retries are off:
// a script whose reply was lost may have run, and running it again would
// count a message twice; the caller falls back instead.
func clientOptions(c config.Cluster, roots *trust.Roots) *redis.Options {
	u := c.Redis
	o := &redis.Options{
		Network:               "tcp",
		Addr:                  net.JoinHostPort(u.Hostname(), portOr(u.Port(), "6379")),
		Username:              u.User.Username(),
		Password:              c.Password(),
		DialTimeout:           c.StoreTimeout,
		ReadTimeout:           c.StoreTimeout,
		WriteTimeout:          c.StoreTimeout,
		PoolTimeout:           c.StoreTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
		DisableIdentity:       true,
		// No CLIENT MAINT_NOTIFICATIONS handshake: Redis and Valkey
		// servers that do not know it would log an error per connection.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if db := trimSlash(u.Path); db != "" {
		fmt.Sscanf(db, "%d", &o.DB) // validated by config
	}
	if u.Scheme == "rediss" {
		tc := roots.ClientTLSConfig()
		tc.ServerName = u.Hostname()
		o.TLSConfig = tc
	}
	return o
}

func portOr(p, def string) string {
	if p == "" {
		return def
	}
	return p
}

func trimSlash(p string) string {
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	return p
}

// Close stops the probe, waits for the replies still being published
// (FinishLater), stops the pipe's sender (calls still queued fail, as
// calls to a closed store do) and closes the connections.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.pipe.close()
	return s.rdb.Close()
}

// Cluster is the [cluster] settings the store was made with.
func (s *Store) Cluster() config.Cluster { return s.cluster }

// Up reports whether the store answered its last operation.
func (s *Store) Up() bool { return s.up.Load() }

// Refuse reports whether messages are refused while the store is
// unavailable (on_store_error = "refuse").
func (s *Store) Refuse() bool { return s.cluster.OnStoreError == config.OnStoreErrorRefuse }

// do runs op against the store within store_timeout. A request's
// cancellation is not inherited: a client hanging up must not make the
// store look down. While the store is marked unavailable op is not run.
func (s *Store) do(ctx context.Context, op func(ctx context.Context) error) error {
	if !s.up.Load() {
		return ErrUnavailable
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cluster.StoreTimeout)
	defer cancel()
	err := op(ctx)
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	s.fail(err)
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// fail marks the store unavailable, counts the error, logs the fallback
// at most once a minute and starts the probe.
func (s *Store) fail(err error) {
	s.m.StoreError()
	if !s.up.Swap(false) {
		return
	}
	s.m.StoreUp(false)
	what := "counting on this replica's own limits and single-flight until it answers"
	if s.Refuse() {
		what = "refusing messages (503) until it answers, as on_store_error = \"refuse\" says"
	}
	s.logLimited("shared store unavailable", slog.LevelWarn, "shared store unavailable; "+what,
		"store", s.cluster.Redis.Redacted(), "err", err.Error())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.probing || s.closed {
		return
	}
	s.probing = true
	s.wg.Add(1)
	go s.probe()
}

// probe pings the store until it answers, then marks it up.
func (s *Store) probe() {
	defer s.wg.Done()
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cluster.StoreTimeout)
		err := s.rdb.Ping(ctx).Err()
		cancel()
		if err != nil {
			s.m.StoreError()
			continue
		}
		s.mu.Lock()
		s.probing = false
		s.mu.Unlock()
		s.up.Store(true)
		s.m.StoreUp(true)
		s.logLimited("shared store reachable", slog.LevelInfo, "shared store reachable again; limits and duplicate suppression are shared",
			"store", s.cluster.Redis.Redacted())
		return
	}
}

// logLimited logs msg unless the same event was logged within logEvery.
func (s *Store) logLimited(event string, level slog.Level, msg string, args ...any) {
	s.mu.Lock()
	now := time.Now()
	last, seen := s.lastLog[event]
	if seen && now.Sub(last) < logEvery {
		s.mu.Unlock()
		return
	}
	s.lastLog[event] = now
	s.mu.Unlock()
	s.log.Log(context.Background(), level, msg, args...)
}

// Hash names a number or a client address in the store: an HMAC with the
// config's message key, so the store holds no phone numbers and replicas
// with the same config (the same secrets) name them alike.
func Hash(idKey []byte, s string) string { return NewHasher(idKey).Hash(s) }

// Hasher is Hash for one key, reusing its HMAC states and the buffers
// their input is framed in (macpool): a message hashes its client and
// every number, and a new HMAC is five allocations.
type Hasher struct{ macs *macpool.Pool }

// NewHasher returns a Hasher with idKey.
func NewHasher(idKey []byte) *Hasher { return &Hasher{macs: macpool.New(idKey)} }

// Hash is Hash(idKey, s).
func (h *Hasher) Hash(s string) string {
	sum := h.macs.SumString(s)
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

// dailyKey is the daily counter's key for now's UTC day.
func (s *Store) dailyKey(now time.Time) string {
	y, m, d := now.UTC().Date()
	day := y*10000 + int(m)*100 + d
	if n := s.day.Load(); n != nil && n.day == day {
		return n.key
	}
	n := &dayName{day: day, key: s.dayPrefix + now.UTC().Format(time.DateOnly)}
	s.day.Store(n)
	return n.key
}

// key is a store key under key_prefix.
func (s *Store) key(parts ...string) string {
	k := s.cluster.KeyPrefix
	for i, p := range parts {
		if i > 0 {
			k += ":"
		}
		k += p
	}
	return k
}
