package trust

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// AIA limits. A CA Issuers URL serves one certificate of a few kilobytes;
// anything else is a mistake or an attack, and must never stall a message.
const (
	// DefaultAIATimeout bounds all fetches for one handshake, every hop
	// included. It stays below the TLS handshake timeout.
	DefaultAIATimeout = 3 * time.Second
	// MaxAIABytes is the most read from one AIA URL.
	MaxAIABytes = 64 << 10
	// MaxAIAHops is how many missing issuers are fetched, one after the
	// other, before giving up.
	MaxAIAHops = 3
	// aiaCacheSize bounds the number of cached URLs.
	aiaCacheSize = 128
	// aiaCacheOK is how long a fetched certificate is reused.
	aiaCacheOK = 6 * time.Hour
	// aiaCacheFail is how long a failed fetch is remembered, so a dead AIA
	// server costs one timeout per minute instead of one per message.
	aiaCacheFail = time.Minute
)

// IssuerFetchError means the chain was incomplete and the missing issuer
// could not be fetched from the certificate's AIA "CA Issuers" URL.
type IssuerFetchError struct {
	URL string
	Err error
}

func (e *IssuerFetchError) Error() string {
	return fmt.Sprintf("fetching the missing issuer from AIA URL %s: %v", e.URL, e.Err)
}

func (e *IssuerFetchError) Unwrap() error { return e.Err }

// aiaFetcher downloads issuer certificates named in AIA extensions, with a
// bounded in-memory cache. It is safe for concurrent use.
type aiaFetcher struct {
	client  *http.Client
	timeout time.Duration
	now     func() time.Time

	mu    sync.Mutex
	cache map[string]aiaEntry
}

type aiaEntry struct {
	cert    *x509.Certificate
	err     error
	expires time.Time
}

func newAIAFetcher(timeout time.Duration) *aiaFetcher {
	if timeout <= 0 {
		timeout = DefaultAIATimeout
	}
	dialer := &net.Dialer{Timeout: timeout}
	return &aiaFetcher{
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:                  nil, // like provider traffic: never via the environment
				DialContext:            dialer.DialContext,
				TLSHandshakeTimeout:    timeout,
				ResponseHeaderTimeout:  timeout,
				MaxResponseHeaderBytes: 16 << 10,
				DisableKeepAlives:      true,
			},
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 3 {
					return errors.New("too many redirects")
				}
				return checkAIAURL(req.URL)
			},
		},
		timeout: timeout,
		now:     time.Now,
		cache:   map[string]aiaEntry{},
	}
}

func checkAIAURL(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// issuerOf fetches the certificate that issued c, trying each of its AIA
// URLs in turn. The result is only a candidate intermediate: the caller
// verifies the chain again against its roots.
func (f *aiaFetcher) issuerOf(ctx context.Context, c *x509.Certificate) (*x509.Certificate, error) {
	var firstErr error
	for _, raw := range c.IssuingCertificateURL {
		issuer, err := f.fetch(ctx, raw)
		if err == nil {
			if err = c.CheckSignatureFrom(issuer); err != nil {
				err = &IssuerFetchError{URL: raw, Err: errors.New("the certificate served there did not issue this one")}
			}
		}
		if err == nil {
			return issuer, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func (f *aiaFetcher) fetch(ctx context.Context, raw string) (*x509.Certificate, error) {
	now := f.now()
	f.mu.Lock()
	e, ok := f.cache[raw]
	f.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.cert, e.err
	}
	cert, err := f.download(ctx, raw)
	if err != nil {
		err = &IssuerFetchError{URL: raw, Err: err}
	}
	e = aiaEntry{cert: cert, err: err, expires: now.Add(aiaCacheOK)}
	if err != nil {
		e.expires = now.Add(aiaCacheFail)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cache) >= aiaCacheSize {
		for k, v := range f.cache { // drop expired entries, else an arbitrary one
			if !now.Before(v.expires) {
				delete(f.cache, k)
			}
		}
		for k := range f.cache {
			if len(f.cache) < aiaCacheSize {
				break
			}
			delete(f.cache, k)
		}
	}
	f.cache[raw] = e
	return cert, err
}

func (f *aiaFetcher) download(ctx context.Context, raw string) (*x509.Certificate, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a valid URL")
	}
	if err := checkAIAURL(u); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("timed out after %v", f.timeout)
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAIABytes+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("timed out after %v", f.timeout)
		}
		return nil, fmt.Errorf("reading: %w", err)
	}
	if len(body) > MaxAIABytes {
		return nil, fmt.Errorf("larger than %d bytes", MaxAIABytes)
	}
	cert, err := parseIssuerCert(body)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, errors.New("the certificate served is not a CA")
	}
	return cert, nil
}

// parseIssuerCert reads a single DER certificate (what RFC 5280 says a CA
// Issuers URL serves) or, as some CAs publish, a PEM one. PKCS#7 bundles
// (.p7c) are not understood.
func parseIssuerCert(b []byte) (*x509.Certificate, error) {
	if block, _ := pem.Decode(b); block != nil && block.Type == "CERTIFICATE" {
		b = block.Bytes
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, errors.New("not a DER or PEM certificate")
	}
	return c, nil
}
