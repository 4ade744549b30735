package store_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/postern/postern/internal/redistest"
	"github.com/postern/postern/proxy/config"
	"github.com/postern/postern/proxy/store"
	"github.com/postern/postern/trust"
	"github.com/postern/postern/trust/trusttest"
)

// TestRedissVerifiedLikeAProvider: a rediss:// store is verified against
// the config's roots (ca_files), as a provider is: trusted through its CA,
// it answers; with only the system roots, the same server is unavailable.
func TestRedissVerifiedLikeAProvider(t *testing.T) {
	ca := trusttest.NewCA(t)
	leaf := ca.Leaf(t, trusttest.LeafOptions{})
	dir := t.TempDir()
	var chain []byte
	for _, der := range leaf.Certificate {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalECPrivateKey(leaf.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, chain, 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	srv := redistest.StartTLS(t, certFile, keyFile)

	u, _ := url.Parse("rediss://localhost:" + strconv.Itoa(srv.Port) + "/0")
	c := config.Cluster{Redis: u, KeyPrefix: "tls:", OnStoreError: config.OnStoreErrorLocal, StoreTimeout: 2 * time.Second}
	trusted, err := trust.LoadRoots([]string{ca.WritePEM(t, dir)})
	if err != nil {
		t.Fatal(err)
	}
	good := store.New(c, trusted, nil, nil)
	defer good.Close()
	ask := store.Ask{Now: time.Now(), DailyMax: 5, Numbers: []string{"n"}}
	if _, _, err := good.Admit(context.Background(), &ask); err != nil || !good.Up() {
		t.Fatalf("trusted rediss: %v", err)
	}
	system, err := trust.LoadRoots(nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := store.New(c, system, nil, nil)
	defer bad.Close()
	if _, _, err := bad.Admit(context.Background(), &ask); !errors.Is(err, store.ErrUnavailable) || bad.Up() {
		t.Fatalf("untrusted rediss: %v, want unavailable", err)
	}
}
