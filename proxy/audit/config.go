package audit

import (
	"crypto/x509"
	"net/url"
)

// Config says where audit lines go.
type Config struct {
	Console        string   // "stdout", "stderr" or "off"
	File           string   // append-only file; "" = none
	Syslog         *url.URL // udp://, tcp:// or tls:// host:port; nil = none
	SyslogRoots    *x509.CertPool
	SyslogFacility int // RFC 5424 facility number
	Queue          int
	// ChainKey keys the HMAC chain of every line (nil: plain SHA-256);
	// Version is postern's, for chain_start lines. See chain.go.
	ChainKey ChainKey
	Version  string
}
