package trust

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
)

// Client-safe reasons returned by [DescribeTLSError].
const (
	// ReasonUntrusted: the chain does not lead to a trusted root (unknown
	// authority, missing intermediate, a constraint or a bad CA).
	ReasonUntrusted = "certificate not trusted"
	// ReasonExpired: a certificate in the chain is expired or not yet valid.
	ReasonExpired = "certificate expired or not yet valid"
	// ReasonHostname: the certificate does not cover the provider's host.
	ReasonHostname = "certificate is for another host"
	// ReasonPin: the chain verifies but carries none of the host's pinned keys.
	ReasonPin = "certificate does not match the configured pin"
	// ReasonIssuerFetch: an intermediate was missing and could not be fetched
	// from the certificate's AIA URL (timeout, too large, not a certificate).
	ReasonIssuerFetch = "certificate not trusted: missing intermediate could not be fetched"
	// ReasonHandshake: any other TLS failure (alerts, version or cipher
	// mismatch, a server that does not speak TLS).
	ReasonHandshake = "TLS handshake failed"
)

// DescribeTLSError reports whether err (anywhere in its wrapped chain, for
// example inside a *url.Error from an http.Client) is a certificate
// verification or TLS handshake failure, and if so returns a short fixed
// reason that is safe to show a client. The reason never contains text from
// err. Timeouts, including the TLS handshake timeout, are not reported here.
func DescribeTLSError(err error) (reason string, ok bool) {
	if err == nil {
		return "", false
	}
	var (
		hostErr    x509.HostnameError
		invalidErr x509.CertificateInvalidError
		unknownErr x509.UnknownAuthorityError
		sysRootErr x509.SystemRootsError
		algErr     x509.InsecureAlgorithmError
		verifyErr  *tls.CertificateVerificationError
		recordErr  tls.RecordHeaderError
		alertErr   tls.AlertError
		echErr     *tls.ECHRejectionError
		opErr      *net.OpError
		pinErr     *PinMismatchError
		fetchErr   *IssuerFetchError
	)
	switch {
	case errors.As(err, &pinErr):
		return ReasonPin, true
	case errors.As(err, &fetchErr):
		return ReasonIssuerFetch, true
	case errors.As(err, &hostErr):
		return ReasonHostname, true
	case errors.As(err, &invalidErr):
		if invalidErr.Reason == x509.Expired {
			return ReasonExpired, true
		}
		return ReasonUntrusted, true
	case errors.As(err, &unknownErr),
		errors.As(err, &sysRootErr),
		errors.As(err, &algErr),
		errors.As(err, &verifyErr): // e.g. a root's distrust-after constraint
		return ReasonUntrusted, true
	case errors.Is(err, http.ErrSchemeMismatch), // RecordHeaderError as http.Client reports it
		errors.As(err, &recordErr),
		errors.As(err, &alertErr),
		errors.As(err, &echErr):
		return ReasonHandshake, true
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports an alert from the server as a *net.OpError with
		// Op "remote error" wrapping an unexported alert type.
		return ReasonHandshake, true
	}
	// Other handshake failures (for example "tls: server selected unsupported
	// protocol version") are untyped errors; crypto/tls prefixes all of its
	// errors with "tls: ". Only the fixed reason is returned, never the text.
	for e := range chain(err) {
		if strings.HasPrefix(e.Error(), "tls: ") {
			return ReasonHandshake, true
		}
	}
	return "", false
}

// chain yields err and every error it wraps, depth first.
func chain(err error) func(yield func(error) bool) {
	return func(yield func(error) bool) {
		var walk func(error) bool
		walk = func(e error) bool {
			if e == nil {
				return true
			}
			if !yield(e) {
				return false
			}
			switch u := e.(type) {
			case interface{ Unwrap() error }:
				return walk(u.Unwrap())
			case interface{ Unwrap() []error }:
				for _, x := range u.Unwrap() {
					if !walk(x) {
						return false
					}
				}
			}
			return true
		}
		walk(err)
	}
}
