package main

import (
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
)

// fakeProvider is a TLS One API on loopback that accepts every message. It
// offers HTTP/2 and HTTP/1.1, like Clickatell, unless h2 is false.
type fakeProvider struct {
	srv *httptest.Server
	n   atomic.Int64
}

func startProvider(h2 bool) *fakeProvider {
	f := &fakeProvider{}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.EnableHTTP2 = h2
	f.srv.StartTLS()
	return f
}

func (f *fakeProvider) serve(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"messages":[{"apiMessageId":"bench%d","accepted":true,"to":"12015550000","error":null}],"error":null}`, f.n.Add(1))
}

// caFile writes the provider's certificate for postern's ca_files.
func (f *fakeProvider) caFile(dir string) (string, error) {
	p := filepath.Join(dir, "provider-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	return p, os.WriteFile(p, b, 0o600)
}
