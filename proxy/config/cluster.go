package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// clusterFile mirrors [cluster]: the shared store several replicas count
// their limits and claim their messages in.
type clusterFile struct {
	Redis         string   `toml:"redis"`
	RedisPassword Secret   `toml:"redis_password"`
	KeyPrefix     *string  `toml:"key_prefix"`
	OnStoreError  string   `toml:"on_store_error"`
	StoreTimeout  Duration `toml:"store_timeout"`
	DedupWindow   Window   `toml:"dedup_window"`
}

// What a replica does while the shared store cannot answer.
const (
	OnStoreErrorLocal  = "local"  // count on this replica's own limits and single-flight
	OnStoreErrorRefuse = "refuse" // answer 503, send nothing
)

// Cluster is [cluster]: where the shared store is and how to use it. The
// zero Cluster (no [cluster] table) means every replica counts alone.
type Cluster struct {
	// Redis is the store's URL (redis:// or rediss://), without a
	// password; nil when [cluster] is not configured.
	Redis        *url.URL
	KeyPrefix    string
	OnStoreError string        // OnStoreErrorLocal or OnStoreErrorRefuse
	StoreTimeout time.Duration // bound on each store operation
	// DedupWindow is how long a finished message's reply is kept for an
	// identical request to be answered from; 0 = off (only messages in
	// flight are joined).
	DedupWindow time.Duration

	password string
}

// Enabled reports whether a shared store is configured.
func (c Cluster) Enabled() bool { return c.Redis != nil }

// Password is redis_password's value, "" when unset.
func (c Cluster) Password() string { return c.password }

// Equal reports whether c and o use the same store the same way, so a
// reload can keep the connection.
func (c Cluster) Equal(o Cluster) bool {
	return urlString(c.Redis) == urlString(o.Redis) && c.password == o.password && c.KeyPrefix == o.KeyPrefix &&
		c.OnStoreError == o.OnStoreError && c.StoreTimeout == o.StoreTimeout && c.DedupWindow == o.DedupWindow
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// Window is a duration or "off" (0).
type Window struct {
	time.Duration
	set bool
}

// UnmarshalText parses a Go duration with a unit, or "off".
func (w *Window) UnmarshalText(b []byte) error {
	if strings.TrimSpace(string(b)) == "off" {
		*w = Window{set: true}
		return nil
	}
	var d Duration
	if err := d.UnmarshalText(b); err != nil {
		return fmt.Errorf("%w, or \"off\"", err)
	}
	*w = Window{Duration: d.Duration, set: true}
	return nil
}

func (v *validator) buildCluster(cf *clusterFile, cfg *Config) {
	set := cf.Redis != "" || cf.RedisPassword.IsSet() || cf.KeyPrefix != nil || cf.OnStoreError != "" ||
		cf.StoreTimeout.Duration != 0 || cf.DedupWindow.set
	if !set {
		return
	}
	c := Cluster{
		KeyPrefix:    defaultKeyPrefix,
		OnStoreError: OnStoreErrorLocal,
		StoreTimeout: orDuration(cf.StoreTimeout.Duration, defaultStoreTimeout),
		DedupWindow:  defaultDedupWindow,
	}
	if cf.DedupWindow.set {
		c.DedupWindow = cf.DedupWindow.Duration
	}
	if cf.KeyPrefix != nil {
		c.KeyPrefix = *cf.KeyPrefix
		if !headerSafe(c.KeyPrefix) || strings.ContainsAny(c.KeyPrefix, " {}") {
			v.at("cluster.key_prefix", "key_prefix may not contain spaces, braces or control characters")
		}
	}
	switch cf.OnStoreError {
	case "", OnStoreErrorLocal:
	case OnStoreErrorRefuse:
		c.OnStoreError = OnStoreErrorRefuse
	default:
		v.at("cluster.on_store_error", "on_store_error %q: want \"local\" (count on this replica alone while the store is down) or \"refuse\" (answer 503)", cf.OnStoreError)
	}
	if c.StoreTimeout > 10*time.Second {
		v.at("cluster.store_timeout", "store_timeout must be at most 10s: every message waits for the store")
	}
	if c.DedupWindow > 24*time.Hour {
		v.at("cluster.dedup_window", "dedup_window must be at most 24h, or \"off\"")
	}
	if cf.Redis == "" {
		v.at("cluster", "[cluster] needs redis, the store's URL (e.g. \"redis://postern-redis:6379/0\")")
		return
	}
	u, err := parseRedisURL(cf.Redis)
	if err != nil {
		v.at("cluster.redis", "redis: %v", err)
		return
	}
	c.Redis = u
	if cf.RedisPassword.IsSet() {
		v.later(func() {
			pw, err := v.secret(cf.RedisPassword)
			if err != nil {
				v.at("cluster.redis_password", "redis_password: %v", err)
				return
			}
			cfg.Cluster.password = pw
			cfg.secrets = append(cfg.secrets, pw)
		})
	}
	cfg.Cluster = c
}

// parseRedisURL accepts redis://[user@]host[:port][/db] and rediss://
// (TLS). A password in the URL is refused: it would sit in the file in
// clear and in every place the URL is shown; redis_password takes a secret.
func parseRedisURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("not a URL (want redis://host:6379/0 or rediss://host:6380/0)")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("scheme %q: want redis:// or rediss:// (TLS)", u.Scheme)
	}
	if _, ok := u.User.Password(); ok {
		return nil, fmt.Errorf("the URL may not carry a password: set redis_password (literal, env:NAME or file:/path)")
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("the URL needs a host, e.g. redis://postern-redis:6379/0")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("invalid port %q", p)
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return nil, fmt.Errorf("the path must be a database number, e.g. /0")
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("options in the URL are not supported; use the [cluster] keys")
	}
	return u, nil
}
