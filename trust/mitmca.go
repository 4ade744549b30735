package trust

import (
	"container/list"
	"crypto/tls"
	"strings"
	"sync"
	"time"
)

// Interception leaf lifetimes and cache bound. Leaves are short-lived and
// minted on demand; the cache keeps the handful of intercepted hosts from
// costing a signature per CONNECT.
const (
	interceptLeafValidity = 7 * 24 * time.Hour
	interceptLeafReuse    = 24 * time.Hour
	// InterceptCacheSize bounds how many intercepted hosts' leaves are kept.
	InterceptCacheSize = 64
)

// InterceptCA terminates TLS for intercepted CONNECT requests: it mints a
// leaf per host from postern's own interception CA (never goproxy's
// built-in one, whose key is public) and keeps recent leaves in a bounded
// LRU cache. It is safe for concurrent use.
type InterceptCA struct {
	ca  *LocalCA
	now func() time.Time

	mu    sync.Mutex
	order *list.List // of *leafEntry, most recent first
	byKey map[string]*list.Element
	size  int
}

type leafEntry struct {
	host    string
	cert    *tls.Certificate
	expires time.Time
}

// LoadOrCreateInterceptCA loads the interception CA from dir
// (intercept-ca.crt, intercept-ca.key) or creates it on first start.
func LoadOrCreateInterceptCA(dir string) (ic *InterceptCA, created bool, err error) {
	ca, created, err := LoadOrCreateCA(dir, "intercept", "postern interception CA")
	if err != nil {
		return nil, false, err
	}
	return NewInterceptCA(ca, InterceptCacheSize, nil), created, nil
}

// NewInterceptCA wraps ca with a leaf cache of size entries; now nil means
// time.Now.
func NewInterceptCA(ca *LocalCA, size int, now func() time.Time) *InterceptCA {
	if now == nil {
		now = time.Now
	}
	return &InterceptCA{ca: ca, now: now, order: list.New(), byKey: map[string]*list.Element{}, size: max(size, 1)}
}

// CA returns the interception CA, whose certificate clients must trust.
func (ic *InterceptCA) CA() *LocalCA { return ic.ca }

// Leaf returns a certificate for host, from the cache or freshly signed.
func (ic *InterceptCA) Leaf(host string) (*tls.Certificate, error) {
	host = strings.ToLower(host)
	now := ic.now()
	ic.mu.Lock()
	if el, ok := ic.byKey[host]; ok {
		e := el.Value.(*leafEntry)
		if now.Before(e.expires) {
			ic.order.MoveToFront(el)
			ic.mu.Unlock()
			return e.cert, nil
		}
		ic.order.Remove(el)
		delete(ic.byKey, host)
	}
	ic.mu.Unlock()

	cert, err := ic.ca.Issue([]string{host}, now.Add(-time.Hour), now.Add(interceptLeafValidity))
	if err != nil {
		return nil, err
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if el, ok := ic.byKey[host]; ok { // signed concurrently: keep one
		ic.order.Remove(el)
	}
	ic.byKey[host] = ic.order.PushFront(&leafEntry{host: host, cert: cert, expires: now.Add(interceptLeafReuse)})
	for ic.order.Len() > ic.size {
		last := ic.order.Back()
		ic.order.Remove(last)
		delete(ic.byKey, last.Value.(*leafEntry).host)
	}
	return cert, nil
}

// Cached returns how many leaves are cached.
func (ic *InterceptCA) Cached() int {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	return ic.order.Len()
}

// ServerTLSConfig returns the inbound TLS configuration for an intercepted
// connection to host.
func (ic *InterceptCA) ServerTLSConfig(host string) (*tls.Config, error) {
	cert, err := ic.Leaf(host)
	if err != nil {
		return nil, err
	}
	return ServerTLSConfig(func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert, nil }), nil
}
