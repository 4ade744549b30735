package audit

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("correct horse battery staple 4711")

// trail is a file sink under test: lines go through real Sinks.
type trail struct {
	t     *testing.T
	path  string
	sinks *Sinks
	log   *slog.Logger
	n     int
}

func openTrail(t *testing.T, path string, key []byte) *trail {
	t.Helper()
	s, err := OpenSinks(Config{Console: "off", File: path, Queue: 100_000, ChainKey: key, Version: "v9.9.9-test"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &trail{t: t, path: path, sinks: s, log: slog.New(slog.NewJSONHandler(s, nil))}
}

func (tr *trail) write(k int) {
	for range k {
		tr.n++
		outcome := []string{"delivered", "refused", "unknown"}[tr.n%3]
		Write(context.Background(), tr.log, &Record{Client: "127.0.0.1", Mode: "proxy", Method: "GET", Route: "r",
			Provider: "clickatell-one", To: []string{"*******4567"}, Country: []string{"US"}, Chars: 2, Segments: 1,
			Outcome: outcome, Status: 200, TLS: "TLS 1.3", Leaf: strings.Repeat("ab", 32), Latency: time.Millisecond})
	}
}

// settle waits until the sinks wrote everything queued: each sink's
// written counter reaches the lines sent.
func (tr *trail) settle() {
	tr.t.Helper()
	for range 1000 {
		if tr.sinks.Stats()[0].Written+tr.sinks.Dropped() >= uint64(tr.n) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	tr.t.Fatal("audit lines not written")
}

func (tr *trail) close() {
	tr.t.Helper()
	if err := tr.sinks.Close(); err != nil {
		tr.t.Fatal(err)
	}
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.SplitAfter(string(b), "\n")
}

func writeLines(t *testing.T, path string, ls []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(ls, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

func verify(t *testing.T, files []string, keys ...[]byte) *Verification {
	t.Helper()
	v, err := VerifyFiles(files, keys...)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	if bytes.Contains(out, testKey) {
		t.Fatalf("the verification repeats the key: %s", out)
	}
	return v
}

func mustBeIntact(t *testing.T, v *Verification) {
	t.Helper()
	if !v.Intact {
		t.Fatalf("chain not intact: %v\n%s", v.Problems, v.Checked)
	}
}

// TestChainLineForm: every line ends with "seq" and "mac" as its last
// fields, and the mac is the documented construction, recomputed here
// from the bytes alone.
func TestChainLineForm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr := openTrail(t, path, testKey)
	tr.write(3)
	tr.close()
	ls := lines(t, path)
	if len(ls) != 5 || ls[4] != "" {
		t.Fatalf("want chain_start + 3 lines, got %q", ls)
	}
	prev := strings.Repeat("0", 64)
	for i, l := range ls[:4] {
		var f map[string]any
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if f["seq"] != float64(i+1) {
			t.Errorf("line %d: seq %v", i+1, f["seq"])
		}
		cut := strings.LastIndex(l, `,"mac":"`)
		canonical := l[:cut]
		if !strings.HasSuffix(canonical, fmt.Sprintf(`,"seq":%d`, i+1)) || l[cut:] != `,"mac":"`+f["mac"].(string)+`"}`+"\n" {
			t.Errorf("line %d: seq and mac are not the last fields: %s", i+1, l)
		}
		want := hmacHex(testKey, prev+canonical)
		if f["mac"] != want {
			t.Errorf("line %d: mac %v, want HMAC(key, prev||canonical) = %s", i+1, f["mac"], want)
		}
		prev = want
		if i == 0 {
			if f["msg"] != MsgChainStart || f["alg"] != ChainHMAC || f["key_fingerprint"] != KeyFingerprint(testKey) ||
				f["version"] != "v9.9.9-test" || f["reason"] != ChainReasonStart || f["prev_mac"] != nil {
				t.Errorf("chain_start: %s", l)
			}
		} else if f["msg"] != "message" {
			t.Errorf("line %d: %s", i+1, l)
		}
		if strings.Contains(l, string(testKey)) {
			t.Errorf("line %d holds the key", i+1)
		}
	}
	mustBeIntact(t, verify(t, []string{path}, testKey))
}

// TestChainAcrossRestartsRotationAndKeys: a restart appends a chain_start
// linked to the file's last line; a rotated file's first line names the
// previous file's last mac; a new key starts a chain linked to the old;
// all of it verifies in order, and a gzipped rotated file too.
func TestChainAcrossRestartsRotationAndKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	tr := openTrail(t, path, testKey)
	tr.write(5)
	tr.close()
	tr = openTrail(t, path, testKey) // restart
	tr.write(5)
	tr.settle()
	ls := lines(t, path)
	var start map[string]any
	json.Unmarshal([]byte(ls[6]), &start)
	var last map[string]any
	json.Unmarshal([]byte(ls[5]), &last)
	if start["msg"] != MsgChainStart || start["prev_mac"] != last["mac"] || start["seq"] != float64(1) {
		t.Fatalf("restart's chain_start does not link to the file's last line:\n%s%s", ls[5], ls[6])
	}
	// Rotation: move the file away; the next line goes to a new one.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	tr.write(4)
	tr.settle()
	// A reload with a new key.
	newKey := []byte("another key, rotated yearly")
	tr.sinks.SetChainKey(newKey)
	tr.write(3)
	tr.close()
	rot := lines(t, path+".1")
	cur := lines(t, path)
	json.Unmarshal([]byte(rot[len(rot)-2]), &last)
	json.Unmarshal([]byte(cur[0]), &start)
	if start["reason"] != ChainReasonRotated || start["prev_mac"] != last["mac"] {
		t.Fatalf("the new file's first line does not name the rotated file's last mac:\n%s%s", rot[len(rot)-2], cur[0])
	}
	if len(cur) != 1+4+1+3+1 {
		t.Fatalf("new file has %d lines: %q", len(cur)-1, cur)
	}
	json.Unmarshal([]byte(cur[5]), &start)
	if start["reason"] != ChainReasonKeyChanged || start["key_fingerprint"] != KeyFingerprint(newKey) {
		t.Fatalf("reload's chain_start: %s", cur[5])
	}

	// gzip the rotated file, as logrotate's compress does.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Join(rot, "")))
	zw.Close()
	os.WriteFile(path+".1.gz", gz.Bytes(), 0o600)

	files := []string{path + ".1.gz", path}
	v := verify(t, files, testKey, newKey)
	mustBeIntact(t, v)
	if v.Chains != 4 || v.Lines != 21 || v.HMACChecked != v.Lines {
		t.Errorf("chains %d, hmac-checked %d of %d lines", v.Chains, v.HMACChecked, v.Lines)
	}
	// Each file verifies on its own too.
	mustBeIntact(t, verify(t, []string{path}, testKey, newKey))

	// Only the old key: the new chain fails, naming the key's fingerprint.
	v = verify(t, files, testKey)
	if v.Intact || len(v.Problems) != 1 || !strings.Contains(v.Problems[0].What, "wrong key") || v.Problems[0].Line != 6 {
		t.Errorf("with the old key only: %v", v.Problems)
	}
	// No key: structure only, and the result says the HMACs were not checked.
	v = verify(t, files)
	mustBeIntact(t, v)
	if v.HMACChecked != 0 || v.Unchecked != v.Lines || !strings.Contains(v.Checked, "NOT verified") {
		t.Errorf("without key: %+v", v)
	}
	// Out of order: a gap between files.
	v = verify(t, []string{path, path + ".1.gz"}, testKey, newKey)
	if v.Intact || !strings.Contains(v.Problems[0].What, "gap between files") {
		t.Errorf("files out of order: %v", v.Problems)
	}
}

// TestChainWithoutKey: plain SHA-256, which verification checks with or
// without a key and calls what it is.
func TestChainWithoutKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr := openTrail(t, path, nil)
	tr.write(10)
	tr.close()
	ls := lines(t, path)
	if strings.Contains(ls[0], "key_fingerprint") || !strings.Contains(ls[0], `"alg":"sha256"`) {
		t.Errorf("chain_start without key: %s", ls[0])
	}
	for _, keys := range [][][]byte{nil, {testKey}} {
		v := verify(t, []string{path}, keys...)
		mustBeIntact(t, v)
		if v.SHA256Checked != 11 || !strings.Contains(v.Checked, "SHA-256 chain of 11 line(s) checked") {
			t.Errorf("%+v", v)
		}
	}
	ls[4] = strings.Replace(ls[4], `"refused"`, `"delivered"`, 1)
	ls[5] = strings.Replace(ls[5], `"unknown"`, `"delivered"`, 1)
	writeLines(t, path, ls)
	v := verify(t, []string{path})
	if len(v.Problems) != 2 || v.Problems[0].Line != 5 || v.Problems[1].Line != 6 {
		t.Errorf("edits in a SHA-256 chain: %v", v.Problems)
	}
}

// TestTamperDetected: each kind of tampering is found, named and placed,
// and nothing else is reported.
func TestTamperDetected(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "audit.log")
	tr := openTrail(t, orig, testKey)
	tr.write(20)
	tr.close()
	base := lines(t, orig) // 21 lines and a final ""

	for _, tc := range []struct {
		name   string
		change func(ls []string) []string
		line   int
		what   string
	}{
		{"edited line", func(ls []string) []string {
			ls[9] = strings.Replace(ls[9], `"status":200`, `"status":201`, 1)
			return ls
		}, 10, "edited line"},
		{"deleted line", func(ls []string) []string { return append(ls[:9:9], ls[10:]...) }, 10, "deleted line before this one: seq 10 is missing"},
		{"deleted lines", func(ls []string) []string { return append(ls[:9:9], ls[12:]...) }, 10, "seq 10 to 12 are missing"},
		{"inserted copy", func(ls []string) []string {
			return append(ls[:10:10], append([]string{ls[7]}, ls[10:]...)...)
		}, 11, "inserted"},
		{"inserted forgery", func(ls []string) []string {
			forged := strings.Replace(ls[10], `"status":200`, `"status":403`, 1)
			return append(ls[:10:10], append([]string{forged}, ls[10:]...)...)
		}, 11, "inserted line"},
		{"reordered pair", func(ls []string) []string { ls[12], ls[13] = ls[13], ls[12]; return ls }, 13, "wrong order"},
		{"truncated tail", func(ls []string) []string {
			ls[20] = ls[20][:len(ls[20])/2]
			return ls
		}, 21, "truncated tail"},
		{"torn line", func(ls []string) []string { ls[5] = ls[5][:40] + "\n"; return ls }, 6, "torn"},
		{"line without mac", func(ls []string) []string {
			ls[3] = `{"time":"2025-01-01T00:00:00Z","msg":"message","outcome":"delivered"}` + "\n"
			return ls
		}, 4, `without "seq" and "mac"`},
		{"head deleted", func(ls []string) []string { return ls[3:] }, 1, "no chain_start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			writeLines(t, path, tc.change(append([]string(nil), base...)))
			v := verify(t, []string{path}, testKey)
			if v.Intact || len(v.Problems) != 1 {
				t.Fatalf("want exactly one problem, got %v", v.Problems)
			}
			if p := v.Problems[0]; p.Line != tc.line || !strings.Contains(p.What, tc.what) || p.File != path {
				t.Errorf("got %s, want line %d %q", p, tc.line, tc.what)
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		v := verify(t, []string{orig}, []byte("not the key"))
		if v.Intact || len(v.Problems) != 1 || !strings.Contains(v.Problems[0].What, "wrong key") ||
			!strings.Contains(v.Problems[0].What, KeyFingerprint(testKey)) {
			t.Errorf("%v", v.Problems)
		}
	})
	t.Run("untouched", func(t *testing.T) { mustBeIntact(t, verify(t, []string{orig}, testKey)) })
}

// TestChainDroppedLinesAreRecorded: lines a sink lost are said in its
// chain, which stays intact.
func TestChainDroppedLinesAreRecorded(t *testing.T) {
	var out bytes.Buffer
	bw := blockingWriter{release: make(chan struct{}), w: &out}
	s, err := OpenSinks(Config{Console: "stdout", Queue: 2, ChainKey: testKey}, bw, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		s.Write([]byte(`{"msg":"message","outcome":"delivered"}` + "\n"))
	}
	close(bw.release)
	s.Close()
	path := filepath.Join(t.TempDir(), "stdout.log")
	os.WriteFile(path, out.Bytes(), 0o600)
	v := verify(t, []string{path}, testKey)
	mustBeIntact(t, v)
	if v.Dropped != s.Dropped() || v.Dropped == 0 || !strings.Contains(out.String(), `"msg":"audit_lines_dropped","dropped":`) {
		t.Errorf("dropped %d, verification says %d:\n%s", s.Dropped(), v.Dropped, out.String())
	}
}

type blockingWriter struct {
	release chan struct{}
	w       *bytes.Buffer
}

func (b blockingWriter) Write(p []byte) (int, error) { <-b.release; return b.w.Write(p) }

func hmacHex(key []byte, s string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// TestChainAfterCrashAndCopytruncate: a file whose last line was torn by a
// crash gets a newline before the new chain_start, so only the torn line
// is reported; a file truncated in place (logrotate copytruncate) starts a
// new chain linked to the copy's last line.
func TestChainAfterCrashAndCopytruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	tr := openTrail(t, path, testKey)
	tr.write(4)
	tr.close()
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-30], 0o600) // died mid-line
	tr = openTrail(t, path, testKey)
	tr.write(2)
	tr.settle()
	v := verify(t, []string{path}, testKey)
	if len(v.Problems) != 1 || v.Problems[0].Line != 5 || !strings.Contains(v.Problems[0].What, "torn") || v.Chains != 2 {
		t.Fatalf("after a torn last line: %v (chains %d)", v.Problems, v.Chains)
	}

	// copytruncate: copy, then truncate in place; postern keeps its handle.
	b, _ = os.ReadFile(path)
	os.WriteFile(path+".1", b, 0o600)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	tr.write(3)
	tr.close()
	ls := lines(t, path)
	if !strings.Contains(ls[0], `"reason":"rotated"`) || len(ls) != 5 {
		t.Fatalf("after copytruncate: %q", ls)
	}
	v = verify(t, []string{path + ".1", path}, testKey)
	if len(v.Problems) != 1 || v.Problems[0].Line != 5 || v.Chains != 3 {
		t.Errorf("copy and truncated file: %v (chains %d)", v.Problems, v.Chains)
	}
	mustBeIntact(t, verify(t, []string{path}, testKey))
}

// TestSetChainKeySameKeyKeepsChain: a reload with the same key (or none
// again) starts no new chain.
func TestSetChainKeySameKeyKeepsChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr := openTrail(t, path, testKey)
	tr.write(1)
	tr.settle()
	tr.sinks.SetChainKey(bytes.Clone(testKey))
	tr.write(1)
	tr.close()
	if v := verify(t, []string{path}, testKey); !v.Intact || v.Chains != 1 || v.Lines != 3 {
		t.Errorf("same key: %+v", v)
	}
}
