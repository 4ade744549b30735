package audit

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeBigTrail writes a chained file of n message lines (after its
// chain_start) the way the sinks seal them.
func writeBigTrail(tb testing.TB, n int) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "big.log")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriter(f)
	h := hmac.New(sha256.New, testKey)
	start := fmt.Sprintf(`{"time":"2026-11-01T00:00:00Z","level":"INFO","msg":"chain_start","version":"test","alg":"hmac-sha256","key_fingerprint":%q,"reason":"start"}`, KeyFingerprint(testKey))
	buf, prev := sealLine(nil, h, nil, 1, []byte(start))
	w.Write(buf)
	prev = append([]byte(nil), prev...)
	for i := range n {
		line := fmt.Sprintf(`{"time":"2026-11-%02dT10:00:00.%06dZ","level":"INFO","msg":"message","client":"10.1.20.11","mode":"proxy","method":"GET","outcome":"delivered","status":200,"route":"clickatell","provider":"clickatell-one","to":["*******4567"],"country":["US"],"chars":23,"segments":1,"ids":["a55b8f8d56f33440e993aa614c68bf8b"],"tls":"TLS 1.3","leaf_sha256":"9f2c41d7e0b5a8c3f6d1e4b7a2c5f8e1d4b7a0c3f6e9d2b5a8c1f4e7d0b3a6c9","upstream_host":"platform.clickatell.com","latency_ms":182.4}`, 1+i%28, i)
		var mac []byte
		buf, mac = sealLine(buf[:0], h, prev, uint64(i+2), []byte(line))
		w.Write(buf)
		prev = append(prev[:0], mac...)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	return path
}

// TestVerifyHundredThousandLines: a long untouched file verifies (and the
// report of it counts every line); one edit near its end is found.
func TestVerifyHundredThousandLines(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	path := writeBigTrail(t, 100_000)
	r, err := ReportFiles([]string{path}, time.Time{}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Chain.Intact || r.Chain.HMACChecked != 100_001 || r.Lines != 100_000 || r.Sent != 100_000 || len(r.Days) != 28 {
		t.Fatalf("chain %+v, lines %d, sent %d, days %d", r.Chain, r.Lines, r.Sent, len(r.Days))
	}
	b, _ := os.ReadFile(path)
	i := strings.LastIndex(string(b), `"status":200`)
	b[i+len(`"status":20`)] = '1'
	os.WriteFile(path, b, 0o600)
	v, err := VerifyFiles([]string{path}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	if v.Intact || len(v.Problems) != 1 || v.Problems[0].Line != 100_001 {
		t.Errorf("one edit in the last line: %v", v.Problems)
	}
}

// BenchmarkVerify: verifying a chained file, per line.
func BenchmarkVerify(b *testing.B) {
	path := writeBigTrail(b, 10_000)
	b.ResetTimer()
	for b.Loop() {
		v, err := VerifyFiles([]string{path}, testKey)
		if err != nil || !v.Intact {
			b.Fatal(err, v.Problems)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_001, "ns/line")
}

// BenchmarkSealLine: the chain's cost per audit line in a sink.
func BenchmarkSealLine(b *testing.B) {
	line := []byte(`{"time":"2026-11-01T10:00:00Z","level":"INFO","msg":"message","client":"10.1.20.11","mode":"proxy","method":"GET","outcome":"delivered","status":200,"route":"clickatell","latency_ms":182.4}` + "\n")
	h := hmac.New(sha256.New, testKey)
	prev := []byte(strings.Repeat("0", 64))
	var buf []byte
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		buf, _ = sealLine(buf[:0], h, prev, 12345, line)
	}
}
