// Package proxytest is postern's test kit: one fake provider (a real TLS
// server on loopback that records what it received), one CA-file helper,
// one config builder and one Start that serves a config on a loopback
// listener. The end-to-end suites of proxy and its callers use it.
package proxytest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Received is one request as the fake provider saw it.
type Received struct {
	Method string
	Path   string
	Query  string
	Host   string
	Header http.Header
	Body   []byte
}

// Raw renders everything the provider received, for "appears nowhere"
// checks.
func (r Received) Raw() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s?%s\nHost: %s\n", r.Method, r.Path, r.Query, r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.Write(r.Body)
	return b.String()
}

// Provider is a real TLS server on loopback that records every request
// (the ledger) and answers with a scripted reply.
type Provider struct {
	Srv *httptest.Server

	mu      sync.Mutex
	ledger  []Received
	conns   int
	respond func(w http.ResponseWriter, r Received)
	observe func(r *http.Request)
}

// NewProvider starts a fake provider with httptest's certificate; it stops
// when the test ends.
func NewProvider(t testing.TB, respond func(w http.ResponseWriter, r Received)) *Provider {
	t.Helper()
	return NewProviderWith(t, ProviderOptions{}, respond)
}

// NewProviderTLS serves with a given certificate (see trusttest).
func NewProviderTLS(t testing.TB, cert tls.Certificate, respond func(w http.ResponseWriter, r Received)) *Provider {
	t.Helper()
	return NewProviderWith(t, ProviderOptions{Cert: &cert}, respond)
}

// ProviderOptions change how a fake provider serves.
type ProviderOptions struct {
	// Cert replaces httptest's certificate; refused handshakes, which
	// tests with their own certificates are about, are not logged.
	Cert *tls.Certificate
	// HTTP2 offers h2 in ALPN, as real providers do.
	HTTP2 bool
	// Observe sees each request as it arrives (protocol, TLS state),
	// before it is recorded and answered.
	Observe func(r *http.Request)
	// Serve, when set, answers every request instead of the recording
	// fake (the ledger stays empty): for fakes that script faults below
	// HTTP, such as resets and stalls.
	Serve http.HandlerFunc
	// Listener, when set, wraps the fake's listener (before TLS): for
	// faults on the connection itself.
	Listener func(net.Listener) net.Listener
	// Quiet discards the server's error log: resets and stalls are
	// what some fakes are for.
	Quiet bool
}

// NewProviderWith starts a fake provider as o says.
func NewProviderWith(t testing.TB, o ProviderOptions, respond func(w http.ResponseWriter, r Received)) *Provider {
	t.Helper()
	f := &Provider{respond: respond, observe: o.Observe}
	var h http.Handler = http.HandlerFunc(f.serve)
	if o.Serve != nil {
		h = o.Serve
	}
	f.Srv = httptest.NewUnstartedServer(h)
	f.Srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
		}
	}
	if o.Cert != nil {
		f.Srv.TLS = &tls.Config{Certificates: []tls.Certificate{*o.Cert}, MinVersion: tls.VersionTLS12}
	}
	if o.Cert != nil || o.Quiet {
		f.Srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	}
	if o.Listener != nil {
		f.Srv.Listener = o.Listener(f.Srv.Listener)
	}
	f.Srv.EnableHTTP2 = o.HTTP2
	f.Srv.StartTLS()
	t.Cleanup(f.Srv.Close)
	return f
}

func (f *Provider) serve(w http.ResponseWriter, r *http.Request) {
	if f.observe != nil {
		f.observe(r)
	}
	body, _ := io.ReadAll(r.Body)
	rec := Received{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Header: r.Header.Clone(), Body: body}
	f.mu.Lock()
	f.ledger = append(f.ledger, rec)
	respond := f.respond
	f.mu.Unlock()
	respond(w, rec)
}

// Requests returns every request received so far, in order.
func (f *Provider) Requests() []Received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Received(nil), f.ledger...)
}

// Connections is how many connections postern opened to the provider.
func (f *Provider) Connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

// URL returns the fake's base URL plus path, e.g.
// https://127.0.0.1:4431/v1/message.
func (f *Provider) URL(path string) string { return f.Srv.URL + path }

// CAFile writes the fake's certificate as a PEM file for ca_files.
func (f *Provider) CAFile(t testing.TB) string {
	t.Helper()
	return CAFile(t, f.Srv.Certificate())
}

// CAFile writes cert as a PEM file for a ca_files key, in a directory
// removed when the test ends.
func CAFile(t testing.TB, cert *x509.Certificate) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "provider-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
