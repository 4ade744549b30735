package config

import (
	"time"

	"github.com/postern/postern/trust"
)

// Every default of config.toml is here: what postern does with a key that
// is not set.

// Defaults for keys that are not set.
const (
	defaultListen         = "127.0.0.1:8080"
	defaultRequestTimeout = 10 * time.Second
	defaultMaxRecipients  = 10
	DefaultAdminListen    = "127.0.0.1:9090"
	defaultShutdownGrace  = 15 * time.Second
)

// Defaults for the [smtp] keys.
const (
	defaultSMTPHostname        = "postern"
	defaultSMTPMaxMessageBytes = 64 << 10
)

// DefaultAllowClients admits only the local machine until an operator says
// otherwise: a fresh install is never an open relay.
var defaultAllowClients = []string{"127.0.0.0/8", "::1/128"}

// Guardrail defaults. ISE's requests are a few hundred bytes and it sends one
// message per guest, so these leave a busy ISE plenty of room while an
// attacker (or a runaway script) hits a wall quickly.
//
// defaultMaxConcurrentUpstream is the per-host connection pool's size: on an
// HTTP/1.1 provider every message in flight has a pooled connection to
// return to, so none is closed and redialled after a burst. At real provider
// latencies (100-300 ms) it allows 200-600 messages/s; the rate limits, not
// this, are the abuse bound (docs/benchmarks.md).
const (
	defaultHeaderReadTimeout     = 10 * time.Second
	defaultMaxURLBytes           = 8 << 10
	defaultMaxBodyBytes          = 64 << 10
	defaultMaxConcurrentUpstream = trust.DefaultMaxIdleConnsPerHost
	defaultUpstreamQueueWait     = 2 * time.Second
	defaultDailyMax              = 1000
)

var (
	defaultPerNumber = Rate{Count: 5, Per: 10 * time.Minute, set: true}
	defaultPerClient = Rate{Count: 600, Per: time.Minute, set: true}
)

// defaultAuditQueue is how many audit lines each sink may hold while it is
// slow or down before lines are dropped (and counted).
const defaultAuditQueue = 1000

// Defaults for the [tls] keys.
const (
	defaultACMEDirectory  = "https://acme-v02.api.letsencrypt.org/directory"
	defaultACMEChallenge  = challengeTLSALPN
	defaultACMEHTTPListen = ":80"
)

// defaultMaxSegments is how many SMS parts a message may need by default:
// six parts hold 918 GSM-7 or 402 UCS-2 characters, far beyond any guest
// password text, and stop a runaway template from costing a fortune.
const defaultMaxSegments = 6

// maxUpstreamRetries bounds upstream_retries: each retry waits, and all of
// them must fit in request_timeout anyway.
const maxUpstreamRetries = 5

// defaultUpstreamRetries is how many times one attempt at a provider is
// repeated at most (so at most 1+2 requests per recipient and route).
const defaultUpstreamRetries = 2

// Defaults for the [cluster] keys. 50 ms per store operation is far above a
// healthy Redis on the same network (well under a millisecond) and far
// below request_timeout, so a store that stalls costs each message little
// before the replica counts on its own.
const (
	defaultKeyPrefix    = "postern:"
	defaultStoreTimeout = 50 * time.Millisecond
	defaultDedupWindow  = 2 * time.Minute
)
