package trust

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
)

func TestDescribeTLSErrorChains(t *testing.T) {
	wrap := func(err error) error {
		return &url.Error{Op: "Post", URL: "https://sms.example.net/send", Err: fmt.Errorf("provider call: %w", err)}
	}
	secret := "SECRET-DETAIL"
	tests := []struct {
		name string
		err  error
		want string // "" means not a TLS error
	}{
		{"nil", nil, ""},
		{"unknown authority", wrap(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), ReasonUntrusted},
		{"expired", wrap(&tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired, Detail: secret}}), ReasonExpired},
		{"not a CA", wrap(&tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.NotAuthorizedToSign}}), ReasonUntrusted},
		{"hostname", wrap(&tls.CertificateVerificationError{Err: x509.HostnameError{Host: secret}}), ReasonHostname},
		{"constraint", wrap(&tls.CertificateVerificationError{Err: errors.New(secret)}), ReasonUntrusted},
		{"record header", wrap(tls.RecordHeaderError{Msg: secret}), ReasonHandshake},
		{"scheme mismatch", wrap(http.ErrSchemeMismatch), ReasonHandshake},
		{"local alert", wrap(tls.AlertError(40)), ReasonHandshake},
		{"remote alert", wrap(&net.OpError{Op: "remote error", Net: "tcp", Err: errors.New("tls: " + secret)}), ReasonHandshake},
		{"untyped tls", wrap(errors.New("tls: server selected unsupported protocol version 302")), ReasonHandshake},
		{"joined", errors.Join(errors.New("x"), wrap(x509.UnknownAuthorityError{})), ReasonUntrusted},
		{"refused", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errors.New("connection refused"))}), ""},
		{"deadline", wrap(context.DeadlineExceeded), ""},
		{"plain", errors.New("provider said no"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reason, ok := DescribeTLSError(tc.err)
			if ok != (tc.want != "") || reason != tc.want {
				t.Errorf("DescribeTLSError = %q, %v; want %q", reason, ok, tc.want)
			}
			if strings.Contains(reason, secret) {
				t.Errorf("reason %q leaks error text", reason)
			}
		})
	}
}

// TestDescribeTLSErrorPlainHTTP covers a provider port that speaks plain
// HTTP, both through http.Client and through the bare transport.
func TestDescribeTLSErrorPlainHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "https://", 1)
	tr := NewTransport(rootsWith(t))
	defer tr.CloseIdleConnections()

	_, err := client(tr).Get(u)
	if reason, ok := DescribeTLSError(err); !ok || reason != ReasonHandshake {
		t.Errorf("client: DescribeTLSError(%v) = %q, %v", err, reason, ok)
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	_, err = tr.RoundTrip(req)
	if reason, ok := DescribeTLSError(err); !ok || reason != ReasonHandshake {
		t.Errorf("transport: DescribeTLSError(%v) = %q, %v", err, reason, ok)
	}
}
