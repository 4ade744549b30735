package trust

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// ExpiryWarning is how long before an upstream leaf expires postern starts
// warning in its log.
const ExpiryWarning = 14 * 24 * time.Hour

// expiryRewarn is how often the warning for one certificate is repeated.
const expiryRewarn = 24 * time.Hour

// LeafExpiry is the last verified leaf certificate seen for one upstream host.
type LeafExpiry struct {
	Host     string
	Subject  string
	NotAfter time.Time
	SHA256   string // hex digest of the certificate
}

// ExpiryTracker remembers, per upstream host, the last verified leaf and
// when it expires, and warns in the log from [ExpiryWarning] before that.
// It is safe for concurrent use; metrics read it with [ExpiryTracker.Leaves]
// or [ExpiryTracker.Remaining].
type ExpiryTracker struct {
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	hosts  map[string]LeafExpiry
	warned map[string]time.Time // host + leaf digest -> last warning
}

// NewExpiryTracker returns a tracker that logs to log (nil: no log) and
// reads the time from now (nil: time.Now).
func NewExpiryTracker(log *slog.Logger, now func() time.Time) *ExpiryTracker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &ExpiryTracker{log: log, now: now, hosts: map[string]LeafExpiry{}, warned: map[string]time.Time{}}
}

// Observe records leaf as the current certificate of host.
func (t *ExpiryTracker) Observe(host string, leaf *x509.Certificate) {
	sum := sha256.Sum256(leaf.Raw)
	e := LeafExpiry{Host: strings.ToLower(host), Subject: leaf.Subject.String(), NotAfter: leaf.NotAfter, SHA256: hex.EncodeToString(sum[:])}
	now := t.now()
	left := e.NotAfter.Sub(now)

	t.mu.Lock()
	t.hosts[e.Host] = e
	key := e.Host + " " + e.SHA256
	warn := left < ExpiryWarning && now.Sub(t.warned[key]) >= expiryRewarn
	if warn {
		t.warned[key] = now
	}
	t.mu.Unlock()

	if warn {
		t.log.Warn("upstream certificate expires soon", "host", e.Host, "subject", e.Subject,
			"not_after", e.NotAfter.UTC().Format(time.RFC3339), "days_left", int(left.Hours()/24), "leaf_sha256", e.SHA256)
	}
}

// Remaining returns how long the last leaf seen for host stays valid
// (negative once expired), and false if none was seen.
func (t *ExpiryTracker) Remaining(host string) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.hosts[strings.ToLower(host)]
	if !ok {
		return 0, false
	}
	return e.NotAfter.Sub(t.now()), true
}

// Leaves returns the last leaf seen for every host, sorted by host.
func (t *ExpiryTracker) Leaves() []LeafExpiry {
	t.mu.Lock()
	out := make([]LeafExpiry, 0, len(t.hosts))
	for _, e := range t.hosts {
		out = append(out, e)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b LeafExpiry) int { return strings.Compare(a.Host, b.Host) })
	return out
}
